"""``ProgressBar``: a per-batch bar with ETA and running metrics in a terminal, one line per epoch elsewhere;
every line fits the terminal's width (``COLUMNS``), so none wraps."""
from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from nerve.train.callbacks import Callback


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


#: shorter names for long log keys, used when a line would not fit the terminal
_SHORT = {"accuracy": "acc", "precision": "prec"}


def _format_logs(logs: dict, short: bool = False) -> list[str]:
    """One ``name value`` part per float log (``lr`` last); ``short`` abbreviates the names."""
    parts, lr = [], None
    for key, value in logs.items():
        if key == "lr":
            lr = f"lr {value:.1e}" if short else f"lr {value:.2e}"
        elif isinstance(value, float):
            name = key
            if short:
                stem = key[4:] if key.startswith("val_") else key
                name = ("v_" if key.startswith("val_") else "") + _SHORT.get(stem, stem)
            parts.append(f"{name} {value:.4f}")
    return parts + ([lr] if lr else [])


def _fit_line(head: str, logs: dict, width: int) -> str:
    """``head`` and the logs in at most ``width - 1`` characters: shorter names first, then whole parts dropped
    from the end (never a number cut in two)."""
    limit = max(width - 1, 10)
    for short, sep in ((False, "  "), (True, " ")):
        parts = _format_logs(logs, short)
        line = sep.join([head, *parts]) if parts else head
        if len(line) <= limit:
            return line
    while parts and len(sep.join([head, *parts])) > limit:
        parts.pop()
    return (sep.join([head, *parts]) if parts else head)[:limit]


class ProgressBar(Callback):
    """Training progress on ``file`` (stdout by default).

    ``verbose=1``: a bar redrawn in place with ETA and running metrics when the output is a terminal, one
    line per epoch when it is not (a log file, a CI job); ``verbose=2``: one line per epoch always;
    ``verbose=0``: silent. ``fit(verbose=...)`` adds one unless ``callbacks`` already holds a ProgressBar.
    """

    def __init__(self, verbose: int = 1, file: TextIO | None = None, width: int = 25,
                 interval: float = 0.1) -> None:
        if verbose not in (0, 1, 2):
            raise ValueError(f"ProgressBar: verbose must be 0, 1 or 2, got {verbose!r}")
        self.verbose, self.file, self.width, self.interval = verbose, file, width, interval

    def _out(self) -> TextIO:
        return self.file if self.file is not None else sys.stdout

    def on_train_begin(self, logs: dict | None = None) -> None:
        isatty = getattr(self._out(), "isatty", None)
        self.dynamic = self.verbose == 1 and bool(isatty and isatty())

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_start = self.last_draw = time.perf_counter()
        self.first_batch = None
        self.header = f"Epoch {epoch + 1}/{self.params['epochs']}"

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.dynamic:
            return
        if self.first_batch is None:  # a resumed epoch starts part-way
            self.first_batch = batch
        now = time.perf_counter()
        steps = self.params.get("steps")
        if now - self.last_draw < self.interval and (steps is None or batch + 1 < steps):
            return
        self.last_draw = now
        done = batch + 1
        rate = (now - self.epoch_start) / max(done - self.first_batch, 1)
        if steps:
            filled = int(self.width * done / steps)
            bar = "=" * max(filled - 1, 0) + (">" if filled < self.width else "=") + "." * (self.width - filled)
            progress = f"{done}/{steps} [{bar}] ETA {_duration(rate * (steps - done))}"
        else:
            progress = f"{done} batches {_duration(now - self.epoch_start)}"
        # NOTE: a line wider than the terminal would wrap, and "\r" would then redraw only its tail.
        line = _fit_line(f"{self.header}  {progress}", logs or {}, shutil.get_terminal_size().columns)
        out = self._out()
        out.write("\r" + line + "\x1b[K")
        out.flush()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self.epoch_start
        steps = self.params.get("steps")
        bar = f"{steps}/{steps} [{'=' * self.width}]  " if self.dynamic and steps else ""
        line = _fit_line(f"{self.header}  {bar}{elapsed:.1f}s", logs or {}, shutil.get_terminal_size().columns)
        out = self._out()
        out.write(("\r" + line + "\x1b[K\n") if self.dynamic else line + "\n")
        out.flush()
