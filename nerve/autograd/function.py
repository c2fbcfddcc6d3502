"""``Function``: the base of every differentiable primitive, public so users can write their own.

A subclass defines ``forward(self, *arrays, **options)`` on raw arrays and one derivative rule,
which returns one gradient per input (``None`` where ``self.needs_input_grad[i]`` is false):

- ``backward(self, g, m)``: the rule written once against the namespace ``m``
  (``nerve.autograd.rule_math``): raw arrays on the first-order path, Tensors under
  ``create_graph=True``. Every built-in primitive has this form.
- ``backward(self, grad)``: the rule in Tensor ops (``self.inputs``, ``self.output()``), PyTorch's
  habit; simpler to write, always run on Tensors.

A fused kernel writes its fast rule for arrays only and defines ``reference(self, *inputs)``, the
same function composed from primitives: under ``create_graph=True`` the engine differentiates the
reference instead, and the tests use it as the kernel's oracle.
"""
from __future__ import annotations

import inspect

from nerve.autograd.engine import grad as _grad
from nerve.autograd.grad_mode import enable_grad, state as _grad_state
from nerve.backend import generic as _generic, ndarray as _ndarray, xp
from nerve.tensor import Tensor

_new_tensor = object.__new__


class Function:
    """A differentiable operation: subclass it and call ``MyFunction.apply(*inputs, **options)``."""

    #: whether backward reads the input values (they are then guarded against in-place changes)
    uses_inputs = True
    #: whether apply keeps the output array for ``self.output()``
    saves_output = False
    #: True for kernels whose backward works on raw arrays only: a second derivative raises
    once_differentiable = False
    #: ``reference(self, *inputs) -> Tensor``: a fused kernel's composition from primitives, which
    #: ``create_graph=True`` differentiates in place of the array-only ``backward(g, m)``
    reference = None
    #: set per class: whether ``backward`` takes the rule namespace (``backward(self, g, m)``)
    takes_math = False
    _hooks = None
    _retained = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        params = list(inspect.signature(cls.backward).parameters.values())
        cls.takes_math = len(params) >= 3 and params[2].kind in (params[2].POSITIONAL_ONLY,
                                                                  params[2].POSITIONAL_OR_KEYWORD)

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
            needs = [isinstance(t, Tensor) and t._requires_grad for t in inputs]  # NOTE: the slot behind the property
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
                t._requires_grad = True
                t._version = 0
                t._hooks = t._post_hooks = None
                return t
        return Tensor._make(out, None)

    def forward(self, *arrays, **options):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def backward(self, grad: Tensor):
        raise NotImplementedError(f"{type(self).__name__}.backward is not defined")

    def output(self) -> Tensor:
        """The forward result as a Tensor linked to this node (requires ``saves_output = True``)."""
        return Tensor._make(self._out, self)

    def backward_reference(self, g: Tensor) -> tuple:
        """Gradients of a fused kernel through its ``reference``, with their graph (higher orders).

        NOTE: the reference runs on an alias of each input, and the gradients are taken at the aliases: this
        node's own partial derivatives, even when one input depends on another (an RNN step's state and its
        weight) or one tensor is passed twice (self-attention's q, k, v).
        """
        needs = self.needs_input_grad
        with enable_grad():
            args = [_Alias.apply(t) if n else t for t, n in zip(self.inputs, needs)]
            out = self.reference(*args)
        grads = iter(_grad([out], [a for a, n in zip(args, needs) if n], [g], create_graph=True,
                           allow_unused=True))
        return tuple(next(grads) if n else None for n in needs)

    @property
    def name(self) -> str:
        return type(self).__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"


class _Alias(Function):
    """The identity as a node of its own: where ``backward_reference`` takes a reference's gradients."""

    uses_inputs = False

    def forward(self, a):
        return a

    def backward(self, g, m):  # d(a) = da
        return g


class ShapeError(RuntimeError, ValueError):
    """Operands whose shapes do not fit together: PyTorch raises RuntimeError there, nerve raised ValueError
    before, so both ``except`` clauses catch it."""


def _explain(cls, exc: ValueError, inputs) -> ValueError:
    """NumPy's broadcasting error, restated with the op's name and the operands' shapes."""
    if "broadcast" not in str(exc):
        return exc
    shapes = " and ".join(str(tuple(xp.shape(t.data if isinstance(t, Tensor) else t))) for t in inputs
                          if isinstance(t, Tensor) or hasattr(t, "shape"))
    return ShapeError(f"{cls.__name__.lower()}: shapes {shapes} do not broadcast")
