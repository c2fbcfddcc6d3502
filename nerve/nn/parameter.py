"""``Parameter``: a Tensor that a Module registers as one of its learnable parameters."""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
from nerve.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default; assigning one to a Module attribute registers it.

    Built from a Tensor it shares that tensor's memory, as in PyTorch.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True) -> None:
        if data is None:
            data = xp.empty(0, dtype=backend.get_default_dtype())
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
