"""Dataset files on disk: the cache directory, checksums, and atomic downloads.

This is the one module of nerve that touches the network (``fetch``); everything it writes lands in a
temporary file first and is renamed into place only after it has been verified.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["cache_dir", "sha256_hex", "fetch", "download", "DownloadError"]


class DownloadError(OSError):
    """Every address for a file failed (network error or checksum mismatch); the message lists why."""


def cache_dir() -> Path:
    """Where downloaded datasets go: ``$NERVE_CACHE``, else ``$XDG_CACHE_HOME/nerve``, else ``~/.cache/nerve``."""
    if os.environ.get("NERVE_CACHE"):
        return Path(os.environ["NERVE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nerve"


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def fetch(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Write the body served at ``url`` into ``dest`` (tests replace this to simulate being offline)."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def download(urls: Sequence[str], dest: Path, verify: Callable[[Path], None]) -> None:
    """Fetch ``dest`` from the first of ``urls`` whose file passes ``verify`` (which raises ValueError if not).

    The bytes go to a temporary file in ``dest``'s directory and are renamed onto ``dest`` only once
    verified, so an interrupted or corrupt download never leaves a bad file under the final name.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        try:
            fetch(url, Path(tmp))
            verify(Path(tmp))
            os.replace(tmp, dest)
            return
        except (OSError, ValueError) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(failures))
