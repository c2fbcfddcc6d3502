"""Custom Functions: a user-written backward, once-differentiable kernels, gradient shapes checked."""
import pytest

import nerve
from nerve import Function
from tests.helpers import randn64


def test_custom_function_with_user_backward():
    class Cube(Function):
        def forward(self, x):
            return x ** 3

        def backward(self, g):
            (x,) = self.inputs
            return g * 3 * x * x

    x = randn64(4)
    assert nerve.gradcheck(Cube.apply, [x])
    assert nerve.gradgradcheck(Cube.apply, [x])


def test_once_differentiable_function_refuses_create_graph():
    class Fused(Function):
        once_differentiable = True

        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g * 2

    x = randn64(3)
    y = Fused.apply(x).sum()
    with pytest.raises(RuntimeError, match="differentiable once"):
        nerve.grad(y, x, create_graph=True)


def test_wrong_gradient_shape_from_custom_function_names_both_shapes():
    class Bad(Function):
        def forward(self, x):
            return x.sum()

        def backward(self, g):
            return g

    x = randn64(3)
    with pytest.raises(RuntimeError, match=r"shape \(\) for an input of shape \(3,\)"):
        Bad.apply(x).backward()
