"""``Function``: the base of every differentiable primitive, public so users can write their own.

A subclass defines ``forward(self, *arrays, **options)`` on raw arrays and ``backward(self, grad)``,
which gets the output's gradient as a Tensor and returns one gradient per input (``None`` where
``self.needs_input_grad[i]`` is false). Backward is written with Tensor ops so that
``create_graph=True`` differentiates it again; ``self.inputs`` are the input Tensors and
``self.output()`` is the output as a Tensor still attached to this node.
"""
from __future__ import annotations

from nerve.autograd.grad_mode import state as _grad_state
from nerve.backend import generic as _generic, ndarray as _ndarray, xp
from nerve.tensor import Tensor

_new_tensor = object.__new__


class Function:
    """A differentiable operation: subclass it and call ``MyFunction.apply(*inputs, **options)``."""

    #: whether backward reads the input values (they are then guarded against in-place changes)
    uses_inputs = True
    #: whether apply keeps the output array for ``self.output()``
    saves_output = False
    #: True for fused kernels whose backward works on raw arrays: a second derivative raises
    once_differentiable = False
    #: optional fast first-order path: ``vjp(self, grad_array)`` -> one array (or None) per input,
    #: used instead of ``backward`` when no graph of the derivative is needed
    vjp = None
    _hooks = None
    _retained = None

    @classmethod
    def apply(cls, *inputs, **options) -> Tensor:
        """Run forward on the inputs' arrays and, when grad is enabled, record this node."""
        fn = cls.__new__(cls)
        try:
            out = fn.forward(*[t.data if isinstance(t, Tensor) else t for t in inputs], **options)
        except ValueError as exc:
            raise _explain(cls, exc, inputs) from None
        if out.__class__ is not _ndarray and isinstance(out, _generic):
            out = xp.asarray(out)
        if _grad_state.enabled:
            needs = [isinstance(t, Tensor) and t.requires_grad for t in inputs]
            if True in needs:
                fn.inputs = inputs
                fn.needs_input_grad = needs
                if cls.uses_inputs:
                    fn._versions = [t._version if isinstance(t, Tensor) else 0 for t in inputs]
                if cls.saves_output:
                    fn._out = out
                # NOTE: Tensor._make inlined: this is the hottest line of the framework.
                t = _new_tensor(Tensor)
                t.data = out
                t.grad = None
                t.grad_fn = fn
                t.requires_grad = True
                t._version = 0
                t._hooks = None
                return t
        return Tensor._make(out, None)

    def forward(self, *arrays, **options):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def backward(self, grad: Tensor):
        raise NotImplementedError(f"{type(self).__name__}.backward is not defined")

    def output(self) -> Tensor:
        """The forward result as a Tensor linked to this node (requires ``saves_output = True``)."""
        return Tensor._make(self._out, self)

    @property
    def name(self) -> str:
        return type(self).__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _explain(cls, exc: ValueError, inputs) -> ValueError:
    """NumPy's broadcasting error, restated with the op's name and the operands' shapes."""
    if "broadcast" not in str(exc):
        return exc
    shapes = " and ".join(str(tuple(xp.shape(t.data if isinstance(t, Tensor) else t))) for t in inputs
                          if isinstance(t, Tensor) or hasattr(t, "shape"))
    return ValueError(f"{cls.__name__.lower()}: shapes {shapes} do not broadcast")
