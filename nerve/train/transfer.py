"""Transfer-learning callbacks for ``fit``: ``GradualUnfreezing`` trains the head first and unfreezes one more
part towards the input every ``every`` epochs (ULMFiT, Howard & Ruder 2018)."""
from __future__ import annotations

from typing import Sequence

from nerve.nn.freeze import freeze, unfreeze
from nerve.train.callbacks import Callback

__all__ = ["GradualUnfreezing"]


class GradualUnfreezing(Callback):
    """``names``: the model's parts from the input to the head (e.g. ``["0", "3", "6", "8"]``). Epochs
    0..every-1 train only the last part, the next ``every`` epochs the last two, and so on. Build the optimiser on
    every parameter before ``fit`` (this callback freezes when training begins): a parameter without a gradient
    is left alone until it is unfrozen."""

    def __init__(self, names: Sequence[str], every: int = 1, verbose: int = 0) -> None:
        if isinstance(names, str) or not names:
            raise ValueError(f"GradualUnfreezing: names must be a non-empty list of submodule names, got {names!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"GradualUnfreezing: every must be a positive int, got {every!r}")
        self.names, self.every, self.verbose = list(names), every, verbose

    def trainable_at(self, epoch: int) -> list[str]:
        """The parts that train during ``epoch`` (0-based)."""
        return self.names[max(0, len(self.names) - 1 - epoch // self.every):]

    def on_train_begin(self, logs: dict | None = None) -> None:
        freeze(self.model, *self.names)  # NOTE: also checks every name before the first batch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        parts = self.trainable_at(epoch)
        unfreeze(self.model, *parts)
        if self.verbose:
            print(f"GradualUnfreezing: epoch {epoch + 1} trains {parts}")
