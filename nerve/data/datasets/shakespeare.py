"""Tiny shakespeare (Karpathy's char-rnn corpus, 1,115,394 characters, 65 distinct): found locally or downloaded.

Search order: ``root`` (a file, or a directory holding ``tinyshakespeare/input.txt`` or ``input.txt``),
``$NERVE_DATA`` (likewise), then the cache (``cache_dir()/tinyshakespeare/input.txt``); when none has it the
file is downloaded into the cache from its canonical address and checked against its SHA-256.
"""
from __future__ import annotations

import os
from pathlib import Path

from nerve.data.datasets import download as _download

__all__ = ["load_shakespeare", "SHAKESPEARE_URL", "SHAKESPEARE_SHA256"]

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
_FOLDER = "tinyshakespeare"
_NAME = "input.txt"


def _candidates(root) -> list:
    """The paths to try, in order; the last one is the cache file (the download target)."""
    paths = []
    for base in (root, os.environ.get("NERVE_DATA") or None):
        if base is None:
            continue
        base = Path(base).expanduser()
        paths += [base] if base.is_file() else [base / _FOLDER / _NAME, base / _NAME]
    paths.append(_download.cache_dir() / _FOLDER / _NAME)
    return paths


def _verify(path: Path) -> None:
    digest = _download.sha256_hex(path.read_bytes())
    if digest != SHAKESPEARE_SHA256:
        raise ValueError(f"{path}: checksum mismatch for tiny shakespeare: SHA-256 {digest}, expected "
                         f"{SHAKESPEARE_SHA256}. The file is corrupt or not the official one: replace it, "
                         "or pass verify=False to use it anyway")


def load_shakespeare(root: str | os.PathLike | None = None, download: bool = True, verify: bool = True) -> str:
    """The tiny shakespeare corpus as one string (split it with ``nerve.data.text.split_text``).

    ``root`` is the file itself or a directory holding it; without a local copy the file is downloaded
    into the cache (``download=True``). ``verify`` checks the SHA-256 of the file used.
    """
    paths = _candidates(root)
    found = next((p for p in paths if p.is_file()), None)
    failure = None
    if found is None and download:
        try:
            _download.download([SHAKESPEARE_URL], paths[-1], _verify)
            found = paths[-1]
        except _download.DownloadError as exc:
            failure = str(exc)
    if found is None:
        lines = ["load_shakespeare: tiny shakespeare was not found"
                 + (" and could not be downloaded." if failure else " (download=False)."),
                 f"Get it from {SHAKESPEARE_URL} and put it at {paths[-1]} (the cache), or pass its path or "
                 f"directory as load_shakespeare(root=...) or name the directory in NERVE_DATA.",
                 "Looked in: " + ", ".join(str(p) for p in paths)]
        if failure:
            lines.append("Download error: " + failure)
        raise FileNotFoundError("\n".join(lines))
    if verify:
        _verify(found)
    return found.read_text(encoding="utf-8")
