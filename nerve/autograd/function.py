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

PyTorch's own style works too: ``@staticmethod forward(ctx, *tensors)`` with ``ctx.save_for_backward`` and
``@staticmethod backward(ctx, grad)`` (or ``forward(*tensors)`` with ``setup_context``), run on Tensors.
"""
from __future__ import annotations

import inspect

from nerve.autograd.engine import grad as _grad
from nerve.autograd.grad_mode import enable_grad, no_grad, state as _grad_state
from nerve.backend import generic as _generic, ndarray as _ndarray, xp
from nerve.tensor import Tensor

_new_tensor = object.__new__


class FunctionCtx:
    """The ctx methods PyTorch's custom functions call; every node is its own ctx."""

    def save_for_backward(self, *tensors) -> None:
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *outputs) -> None:
        self._non_differentiable = True

    def set_materialize_grads(self, value: bool) -> None:
        """Accepted: nerve hands backward a gradient array always."""

    def mark_dirty(self, *tensors) -> None:
        """Accepted: in-place changes are tracked by version counters."""


class Function(FunctionCtx):
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
    #: whether the first-order rule accepts its gradient as an unevaluated ``RowProduct``
    #: (``nerve.autograd.deferred``); the engine evaluates it for every other rule
    takes_products = False
    #: set per class: whether ``backward`` takes the rule namespace (``backward(self, g, m)``)
    takes_math = False
    _hooks = None
    _retained = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("forward"), staticmethod):
            _adopt_ctx_style(cls)
        if getattr(cls.backward, "_once_differentiable", False):
            cls.once_differentiable = True
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


def once_differentiable(backward):
    """PyTorch's decorator for a ``backward`` that cannot be differentiated again (a second derivative
    through it then raises)."""
    backward._once_differentiable = True
    return backward


def _adopt_ctx_style(cls) -> None:
    """PyTorch's custom-function style: ``@staticmethod forward(ctx, *args)`` on Tensors (or ``forward(*args)``
    with ``setup_context(ctx, inputs, output)``) and ``@staticmethod backward(ctx, grad)``; the node is the ctx."""
    user_forward = cls.__dict__["forward"].__func__
    backward = cls.__dict__.get("backward")
    if not isinstance(backward, staticmethod):
        raise TypeError(f"{cls.__name__}: a staticmethod forward (PyTorch's ctx style) needs a staticmethod "
                        "backward(ctx, grad_output)")
    user_backward = backward.__func__
    setup = cls.__dict__.get("setup_context")
    setup = setup.__func__ if isinstance(setup, staticmethod) else None

    def apply(cls_, *inputs, **options) -> Tensor:
        ctx = cls_.__new__(cls_)
        ctx.needs_input_grad = tuple(isinstance(t, Tensor) and t.requires_grad for t in inputs)
        ctx.saved_tensors, ctx._non_differentiable = (), False
        with no_grad():
            out = user_forward(*inputs, **options) if setup else user_forward(ctx, *inputs, **options)
            if setup:
                setup(ctx, inputs, out)
        if not isinstance(out, Tensor):
            raise TypeError(f"{cls_.__name__}.forward must return one Tensor (nerve's Function has one output), "
                            f"got {type(out).__name__}")
        if _grad_state.enabled and True in ctx.needs_input_grad and not ctx._non_differentiable:
            ctx.inputs = inputs
            ctx._versions = [t._version if isinstance(t, Tensor) else 0 for t in inputs]
            return Tensor._make(out.data, ctx)
        return Tensor._make(out.data, None)

    def ctx_backward(self, grad):
        results = user_backward(self, grad)
        return results if isinstance(results, tuple) else (results,)

    cls.apply = classmethod(apply)
    cls.backward = ctx_backward
    if getattr(user_backward, "_once_differentiable", False):
        ctx_backward._once_differentiable = True


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
