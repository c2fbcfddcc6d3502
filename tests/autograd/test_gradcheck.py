"""gradcheck: it names the worst element, samples directions for large inputs, insists on float64."""
import pytest

import nerve
from nerve import Function
from tests.helpers import randn64


def test_gradcheck_reports_the_worst_element():
    class Wrong(Function):
        def forward(self, x):
            return x * x

        def backward(self, g):
            return g * self.inputs[0]  # missing the factor 2

    with pytest.raises(nerve.GradcheckError, match=r"input 0 \(shape \(3,\)\) element .* analytic .* numerical"):
        nerve.gradcheck(Wrong.apply, [randn64(3)])


def test_gradcheck_random_directions_for_large_inputs():
    x = randn64(40, 30)
    assert nerve.gradcheck(lambda t: (t.tanh() * t).sum(dim=0), [x])

    class Wrong(Function):
        def forward(self, x):
            return x * 3

        def backward(self, g):
            return g * 2

    assert not nerve.gradcheck(Wrong.apply, [randn64(40, 30)], raise_exception=False)


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        nerve.gradcheck(lambda t: t * 2, [nerve.randn(3, requires_grad=True)])
