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


class UninitializedParameter(Parameter):
    """PyTorch's placeholder of a lazy module's parameter. nerve's lazy modules hold no parameter before their first
    call, so no tensor is ever one; the name exists for ``isinstance`` checks (always False)."""

    __slots__ = ()

    def __init__(self, *args, **kwargs) -> None:
        raise TypeError("UninitializedParameter: nerve's lazy modules create their parameters at the first call; "
                        "there is no uninitialised parameter to make")


class UninitializedBuffer(Tensor):
    """PyTorch's placeholder of a lazy module's buffer; as ``UninitializedParameter``, never made in nerve."""

    __slots__ = ()

    def __init__(self, *args, **kwargs) -> None:
        raise TypeError("UninitializedBuffer: nerve's lazy modules create their buffers at the first call")


def is_lazy(param) -> bool:
    """Whether ``param`` is an uninitialised placeholder: never, in nerve (see ``UninitializedParameter``)."""
    return isinstance(param, (UninitializedParameter, UninitializedBuffer))
