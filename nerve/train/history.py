"""``History``: the per-epoch logs that ``fit`` returns."""
from __future__ import annotations

import math

from nerve.train.callbacks import Callback


class History(Callback):
    """Records each epoch's logs: ``history`` maps a name ('loss', 'val_accuracy', 'lr') to one value per epoch.

    ``epoch`` lists the (0-based) epochs recorded; ``stop_reason`` says why training stopped early (None if
    it ran all its epochs).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.stop_reason: str | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        for key in self.history:
            if key not in logs:  # keep every list one value per epoch
                self.history[key].append(math.nan)
        for key, value in logs.items():
            if key not in self.history:
                self.history[key] = [math.nan] * len(self.epoch)
            self.history[key].append(float(value))
        self.epoch.append(epoch)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.trainer is not None:
            self.stop_reason = self.trainer.stop_reason

    def state_dict(self) -> dict:
        return {"history": {k: list(v) for k, v in self.history.items()}, "epoch": list(self.epoch)}

    def load_state_dict(self, state: dict) -> None:
        self.history = {k: [float(x) for x in v] for k, v in state["history"].items()}
        self.epoch = [int(e) for e in state["epoch"]]

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"
