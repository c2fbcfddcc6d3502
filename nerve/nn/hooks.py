"""Module backward hooks (PyTorch's ``register_full_backward_hook`` and ``..._pre_hook``): identity nodes around
a call's inputs and outputs that see the gradients passing through them.

The output nodes record ``grad_output`` (and run the pre-hooks, which may replace it); the input nodes record
``grad_input``, and when the last of them has its gradient the hooks run with both. A module none of whose
inputs requires grad (a network's first layer) runs its hooks when its output's gradient arrives, with
``grad_input`` all None, as in PyTorch.
"""
from __future__ import annotations

from nerve.autograd.function import Function
from nerve.tensor import Tensor


class _Call:
    """One forward call's gradients and the hooks to run on them."""

    def __init__(self, module, n_inputs: int, n_outputs: int, waiting: int) -> None:
        self.module, self.waiting = module, waiting
        self.grad_inputs, self.grad_outputs = [None] * n_inputs, [None] * n_outputs
        self.done = False

    def run_hooks(self):
        """The full hooks, once; a replaced ``grad_input`` (returned) must come from a one-input call."""
        self.done = True
        replaced = None
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, tuple(self.grad_inputs), tuple(self.grad_outputs))
            if result is not None:
                replaced = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                self.grad_inputs = list(replaced)
        return replaced


class _Tap(Function):
    """The identity on one tensor of a call, remembering the call and the tensor's position."""

    uses_inputs = False

    def forward(self, a, call, index):
        self.call, self.index = call, index
        return a


class _OutputGrad(_Tap):
    def backward(self, grad):
        call = self.call
        call.grad_outputs[self.index] = grad
        for hook in list(call.module._backward_pre_hooks.values()):
            result = hook(call.module, tuple(call.grad_outputs))
            if result is not None:
                result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                grad = result[self.index]
                call.grad_outputs[self.index] = grad
        if call.waiting == 0 and not call.done and call.module._backward_hooks:
            call.run_hooks()
        return grad, None, None


class _InputGrad(_Tap):
    def backward(self, grad):
        call = self.call
        call.grad_inputs[self.index] = grad
        call.waiting -= 1
        if call.waiting == 0 and call.module._backward_hooks:
            before = list(call.grad_inputs)
            replaced = call.run_hooks()
            if replaced is not None:
                changed = [i for i, (a, b) in enumerate(zip(before, replaced)) if a is not b and i != self.index]
                if changed:
                    raise RuntimeError(
                        f"{type(call.module).__name__} backward hook: it replaced the gradient of input "
                        f"{changed[0]}, which had already gone on; nerve can replace grad_input only for a module "
                        "called with one tensor that requires grad")
                grad = replaced[self.index]
        return grad, None, None


def wrap_inputs(module, args: tuple) -> tuple:
    """``args`` with the tensors that require grad behind input nodes, and the call's record."""
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    call = _Call(module, len(args), 0, len(positions))
    wrapped = tuple(_InputGrad.apply(a, call, i) if i in positions else a for i, a in enumerate(args))
    return wrapped, call


def wrap_outputs(call: _Call, out):
    """The output (a tensor, or a tuple/list of them) behind output nodes."""
    outputs = out if isinstance(out, (tuple, list)) else (out,)
    call.grad_outputs = [None] * len(outputs)
    wrapped = [_OutputGrad.apply(o, call, i) if isinstance(o, Tensor) and o.requires_grad else o
               for i, o in enumerate(outputs)]
    return type(out)(wrapped) if isinstance(out, (tuple, list)) else wrapped[0]
