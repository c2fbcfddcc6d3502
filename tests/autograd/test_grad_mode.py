"""Grad mode: no_grad and enable_grad as context managers and decorators."""
import nerve
from tests.helpers import randn64


def test_no_grad_and_enable_grad_as_context_and_decorator():
    x = randn64(2)
    with nerve.no_grad():
        y = x * 2
        with nerve.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @nerve.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    assert nerve.is_grad_enabled()
