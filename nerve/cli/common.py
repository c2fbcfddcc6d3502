"""What the ``nerve`` sub-commands share: options, their types, bounds and defaults, the config file, run
directories, number formatting and the one-line model summary."""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

from nerve.utils.toml import read_toml


DEFAULTS = {
    "data": "digits", "target": None, "model": "mlp", "hidden": "128,64", "activation": "relu",
    "optimizer": "adam", "lr": 1e-3, "epochs": 30, "batch_size": 32, "dropout": 0.0,
    "weight_decay": 0.0, "seed": 0, "out": None, "verbose": 1, "iters": 2000, "block_size": 64,
    "eval_iters": 200, "rule": "backprop", "adversarial": None, "eps": 0.1, "adv_steps": 10,
    "patience": 5, "no_header": False, "init": None, "freeze": None,
}

#: each option's type: what a TOML value must be (a bool is not an int here)
TYPES = {
    "data": str, "target": str, "model": str, "hidden": str, "activation": str, "optimizer": str, "lr": float,
    "epochs": int, "batch_size": int, "dropout": float, "weight_decay": float, "seed": int, "out": str,
    "verbose": int, "iters": int, "block_size": int, "eval_iters": int, "rule": str, "adversarial": str,
    "eps": float, "adv_steps": int, "patience": int, "no_header": bool, "init": str, "freeze": str,
}

#: options --resume may change (the rest fix the model, its data or the optimiser's state)
RESUME_SAFE = ("epochs", "iters", "verbose", "eval_iters")

RULES = ("backprop", "fa", "sign", "dfa")
LM_MODELS = ("char-lstm", "char-gru", "gpt")
IMAGE_MODELS = ("cnn", "lenet")
#: the tutorial recipes' own defaults where the user gives none (snnTorch tutorial 5: Adam 5e-4, batch 128, 1 epoch)
MODEL_DEFAULTS = {"snn": {"lr": 5e-4, "batch_size": 128, "epochs": 1}}
TOY = ("moons", "circles", "spirals", "xor")


class CLIError(Exception):
    """A problem with the command's input, printed as one line without a traceback (exit status 2)."""


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def fmt(value: float) -> str:
    """A metric or loss for people: 4 significant digits (0.9756, 2.97e+10), the same everywhere."""
    return f"{value:.4g}"


def check_types(values: dict, where: str) -> dict:
    """``values`` with ints widened to float where a float is expected; a wrong type is a CLIError naming the key."""
    names = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
    out = {}
    for key, value in values.items():
        want = TYPES[key]
        if value is None:
            out[key] = value
            continue
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise CLIError(f"{where}: {key} must be {names[want]}, got {value!r}")
        out[key] = value
    return out


def hidden_widths(hidden) -> list[int]:
    try:
        widths = [int(h) for h in str(hidden).split(",") if h.strip()]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise CLIError(f"--hidden takes comma-separated layer widths of at least 1, like 128,64; got {hidden!r}")
    return widths


def validate(cfg: dict) -> None:
    """Check every option's bounds before any work (data loading, a run directory)."""
    for key, least in (("epochs", 1), ("batch_size", 1), ("iters", 1), ("block_size", 1), ("eval_iters", 1),
                       ("adv_steps", 1), ("patience", 0)):
        if cfg[key] < least:
            raise CLIError(f"{flag(key)} must be at least {least}, got {cfg[key]}")
    for key in ("lr", "weight_decay", "eps", "dropout"):
        if not math.isfinite(cfg[key]) or cfg[key] < 0 or (key == "lr" and cfg[key] == 0):
            raise CLIError(f"{flag(key)} must be a finite number {'> 0' if key == 'lr' else '>= 0'}, got {cfg[key]}")
    if cfg["dropout"] >= 1:
        raise CLIError(f"--dropout must be below 1, got {cfg['dropout']}")
    if cfg["verbose"] not in (0, 1, 2):
        raise CLIError(f"--verbose must be 0, 1 or 2, got {cfg['verbose']}")
    if cfg["rule"] not in RULES:
        raise CLIError(f"unknown --rule {cfg['rule']!r}: choose from {list(RULES)}")
    if cfg["model"] not in LM_MODELS + ("gan",):
        hidden_widths(cfg["hidden"])


def load_toml(path: str) -> dict:
    """The options of a TOML file (its ``[train]`` table, or the top level), type-checked."""
    try:
        table = read_toml(path, "--config", "train")
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    data = {k.replace("-", "_"): v for k, v in table.items()}
    unknown = set(data) - set(DEFAULTS)
    if unknown:
        raise CLIError(f"--config {path}: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    if "hidden" in data and isinstance(data["hidden"], list):
        if not all(isinstance(h, int) and not isinstance(h, bool) for h in data["hidden"]):
            raise CLIError(f"--config {path}: hidden must be a list of whole numbers, got {data['hidden']!r}")
        data["hidden"] = ",".join(str(h) for h in data["hidden"])
    return check_types(data, f"--config {path}")


def read_json(path: Path, what: str) -> dict:
    """A JSON object from a run directory, or a CLIError saying the file is missing or damaged."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file; is {Path(path).parent} a run directory of 'nerve train'?") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CLIError(f"{path} is damaged (not valid JSON: {exc}); {what}") from None
    if not isinstance(value, dict):
        raise CLIError(f"{path} is damaged (not a JSON object); {what}")
    return value


def run_config(run: Path) -> dict:
    """The options a run was trained with (its config.json), checked."""
    cfg = read_json(run / "config.json", "retrain, or restore the file")
    missing = sorted(set(DEFAULTS) - set(cfg) - {"patience", "no_header", "init", "freeze"})
    if missing:
        raise CLIError(f"{run / 'config.json'} lacks the options {missing}; is it a run directory of 'nerve train'?")
    return {**DEFAULTS, **cfg}


def file_digest(path: str) -> str:
    """The SHA-256 of a data file, kept in config.json so --resume can tell the data changed."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_dir_for(cfg: dict) -> Path:
    if cfg["out"]:
        return Path(cfg["out"])
    stem = cfg["data"].split(":")[0] + "-" + cfg["model"] + time.strftime("-%Y%m%d-%H%M%S")
    return Path("runs") / stem


def data_file(cfg: dict) -> str | None:
    """The file behind ``--data csv:PATH`` or ``text:PATH``, else None."""
    kind, _, path = cfg["data"].partition(":")
    return path if kind in ("csv", "text") and path else None


def check_out(run: Path, overwrite: bool) -> bool:
    """Refuse to train into an existing, non-empty directory unless ``--overwrite`` (and then only into a run's);
    True when an old run will be replaced."""
    if not run.exists():
        return False
    if not run.is_dir():
        raise CLIError(f"--out {run} is a file, not a directory")
    if not any(run.iterdir()):
        return False
    if not overwrite:
        raise CLIError(f"--out {run} already holds a run; pass --overwrite to replace it, --resume {run} to "
                       "continue it, or choose another --out")
    if not (run / "config.json").exists():
        raise CLIError(f"--out {run} is not empty and is not a run directory (no config.json); not overwriting it")
    return True


def make_run_dir(run: Path, cfg: dict, replace: bool) -> None:
    """Create the run directory (first removing the old run ``--overwrite`` replaces) and write config.json with
    the data file's SHA-256, by which ``--resume`` tells the data changed."""
    if replace:
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    path = data_file(cfg)
    saved = {**cfg, "data_sha256": file_digest(path)} if path and os.path.isfile(path) else cfg
    (run / "config.json").write_text(json.dumps(saved, indent=2), encoding="utf-8")


def remove_failed_run(run: Path) -> None:
    """Remove a new run directory whose training never saved a checkpoint (nothing in it can be resumed)."""
    if run.is_dir() and not (run / "checkpoint.safetensors").exists():
        shutil.rmtree(run, ignore_errors=True)


def interrupted(run: Path) -> int:
    """After Ctrl-C: point to ``--resume`` when the run's checkpoint is whole, else remove the half-made run; 130."""
    if (run / "checkpoint.safetensors").exists():
        print(f"\ninterrupted: the checkpoint in {run} is whole; continue with: nerve train --resume {run}",
              file=sys.stderr)
    else:
        remove_failed_run(run)
    return 130


def say(text: str) -> None:
    """Print ``text`` folded at word boundaries to the terminal's width (``COLUMNS``), so no line wraps mid-word."""
    width = max(shutil.get_terminal_size().columns - 1, 20)
    print(textwrap.fill(text, width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False))


def describe(model) -> str:
    """One line: the class, its constructor options and the parameter count."""
    config = model.get_config() if callable(getattr(model, "get_config", None)) else {}
    parts = []
    for key, value in config.items():
        if value is None or value is False or (isinstance(value, str) and len(value) > 20) or (
                isinstance(value, float) and value == 0.0):
            continue
        if isinstance(value, (list, tuple)):
            value = "-".join(str(v) for v in value) or "none"
        parts.append(f"{key}={value}")
    n = sum(p.numel() for p in model.parameters())
    return f"{type(model).__name__}({', '.join(parts)}), {n:,} parameters"


def plot_history(run: Path, history: dict) -> None:
    if not history or not any(history.values()):
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    keys = [k for k in history if not k.startswith("val_") and k != "lr" and history[k]]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(range(1, len(history[key]) + 1), history[key], label=key)
        if "val_" + key in history:
            ax.plot(range(1, len(history["val_" + key]) + 1), history["val_" + key], label="val_" + key)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(run / "curve.png", dpi=100)
    plt.close(fig)


def output_path(output: str | None, who: str) -> Path | None:
    """``--output``'s path, checked before any work: its folder must exist."""
    if output is None:
        return None
    path = Path(output)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CLIError(f"{who}: --output {output}: the folder {folder} does not exist")
    if path.is_dir():
        raise CLIError(f"{who}: --output {output} is a directory; give a file name")
    return path
