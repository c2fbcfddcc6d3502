"""PyTorch-style custom functions (``@staticmethod forward(ctx, ...)``, ``ctx.save_for_backward``,
``setup_context``, ``once_differentiable``, ``mark_non_differentiable``) on nerve's engine."""
import numpy as np
import pytest

import nerve
from nerve.autograd.function import once_differentiable
from tests.helpers import T


class Cube(nerve.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale=1.0):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x ** 3 * scale

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x ** 2 * ctx.scale, None


class CubeSetup(nerve.autograd.Function):
    @staticmethod
    def forward(x):
        return x ** 3

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x ** 2


class StraightThrough(nerve.autograd.Function):
    """The sign in forward, the identity clipped to |x| < 1 in backward (a binarised network's estimator)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sign()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() < 1).to(grad.dtype)


def test_ctx_style_gradients_to_second_order():
    x = T([0.5, -1.5, 2.0], requires_grad=True)
    out = Cube.apply(x, 2.0)
    assert out.grad_fn.name == "CubeBackward" and out.grad_fn.needs_input_grad == (True, False)
    np.testing.assert_allclose(out.detach().numpy(), 2 * x.detach().numpy() ** 3)
    assert nerve.gradcheck(lambda t: Cube.apply(t, 2.0), (x,))
    assert nerve.gradgradcheck(lambda t: Cube.apply(t, 2.0), (x,))
    assert nerve.gradcheck(CubeSetup.apply, (x,)) and nerve.gradgradcheck(CubeSetup.apply, (x,))


def test_straight_through_estimator_and_once_differentiable():
    x = T([-2.0, -0.5, 0.5, 3.0], requires_grad=True)
    y = StraightThrough.apply(x)
    y.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), [-1, -1, 1, 1])
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 0])
    with pytest.raises(RuntimeError, match="differentiable once only"):
        nerve.autograd.grad(StraightThrough.apply(x).sum(), x, create_graph=True)


def test_no_graph_without_grad_and_errors():
    x = T([1.0], requires_grad=True)
    with nerve.no_grad():
        assert Cube.apply(x).grad_fn is None
    assert Cube.apply(T([1.0])).grad_fn is None

    class NonDiff(nerve.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            out = t.argmax()
            ctx.mark_non_differentiable(out)
            return out

        @staticmethod
        def backward(ctx, grad):
            return None
    assert NonDiff.apply(x).grad_fn is None
    with pytest.raises(TypeError, match="needs a staticmethod backward"):
        class Broken(nerve.autograd.Function):
            @staticmethod
            def forward(ctx, t):
                return t

            def backward(self, grad):
                return grad

    class Pair(nerve.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t, t

        @staticmethod
        def backward(ctx, a, b):
            return a + b
    with pytest.raises(TypeError, match="must return one Tensor"):
        Pair.apply(x)
