"""The backward engine: accumulation, graph freeing, hooks, higher order, in-place checks, errors."""
import math

import numpy as np
import pytest

import nerve
from tests.helpers import randn64


def test_chain_of_100000_ops_has_no_recursion_limit():
    x = nerve.tensor([1.0], dtype=nerve.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 100_000], rtol=1e-9)


def test_gradients_accumulate_in_leaves_until_reset():
    x = nerve.tensor([2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 12.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_shared_gradient_arrays_are_not_aliased_between_leaves():
    a = nerve.ones(3, requires_grad=True)
    b = nerve.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.data *= 5
    np.testing.assert_allclose(b.grad.numpy(), 1.0)


def test_second_backward_through_freed_graph_raises():
    x = randn64(3)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = randn64(3)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_backward_of_non_scalar_needs_gradient():
    x = randn64(2, 3)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\).*pass a gradient"):
        y.backward()
    y.backward(nerve.ones(2, 3, dtype=nerve.float64))
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_backward_without_grad_says_why():
    with pytest.raises(RuntimeError, match="does not require grad"):
        nerve.ones(2).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients, got dtype int64"):
        nerve.tensor([1, 2, 3], requires_grad=True)


def test_second_derivative_of_sin():
    x = nerve.linspace(-3, 3, 7, dtype=nerve.float64, requires_grad=True)
    (dy,) = nerve.grad(nerve.sin(x).sum(), x, create_graph=True)
    (d2y,) = nerve.grad(dy.sum(), x, create_graph=True)
    (d3y,) = nerve.grad(d2y.sum(), x)
    np.testing.assert_allclose(dy.numpy(), np.cos(x.numpy()), rtol=1e-12)
    np.testing.assert_allclose(d2y.numpy(), -np.sin(x.numpy()), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d3y.numpy(), -np.cos(x.numpy()), rtol=1e-12, atol=1e-14)


def test_second_derivative_of_tanh_network_against_finite_differences():
    rng = np.random.default_rng(1)
    w1, b1 = rng.standard_normal((1, 8)), rng.standard_normal(8)
    w2 = rng.standard_normal((8, 1))

    def u_np(x):
        return np.tanh(x @ w1 + b1) @ w2

    def u(x):
        return nerve.tanh(x @ nerve.tensor(w1) + nerve.tensor(b1)) @ nerve.tensor(w2)

    xs = np.linspace(-1, 1, 5).reshape(5, 1)
    x = nerve.tensor(xs, requires_grad=True)
    (du,) = nerve.grad(u(x).sum(), x, create_graph=True)
    (d2u,) = nerve.grad(du.sum(), x)
    h = 1e-4
    fd2 = (u_np(xs + h) - 2 * u_np(xs) + u_np(xs - h)) / h ** 2
    np.testing.assert_allclose(d2u.numpy(), fd2, rtol=1e-5, atol=1e-6)


def test_grad_does_not_touch_dot_grad_and_reports_unused():
    x, z = randn64(3), randn64(3)
    y = (x * x).sum()
    (gx,) = nerve.grad(y, x, retain_graph=True)
    assert x.grad is None
    np.testing.assert_allclose(gx.numpy(), 2 * x.numpy())
    with pytest.raises(RuntimeError, match="not used"):
        nerve.grad(y, [x, z], retain_graph=True)
    gx2, gz = nerve.grad(y, [x, z], allow_unused=True)
    assert gz is None


def test_grad_with_respect_to_intermediate_tensor():
    x = randn64(4)
    h = x.exp()
    y = (h * 3).sum()
    (gh,) = nerve.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), 3.0)


def test_backward_inputs_restricts_accumulation():
    a, b = randn64(2), randn64(2)
    (a * b).sum().backward(inputs=[a])
    assert b.grad is None
    np.testing.assert_allclose(a.grad.numpy(), b.numpy())


def test_hooks_on_leaf_and_intermediate_can_replace_gradient():
    x = randn64(3)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    h = x * 2
    h.register_hook(lambda g: g * 10)
    h.retain_grad()
    h.sum().backward()
    np.testing.assert_allclose(seen[0], 20.0)
    np.testing.assert_allclose(x.grad.numpy(), 20.0)
    np.testing.assert_allclose(h.grad.numpy(), 10.0)


def test_hook_handles_remove_their_hook():
    x = randn64(3)
    seen = []
    handle = x.register_hook(lambda g: seen.append(1))
    (x * 2).sum().backward()
    handle.remove()
    handle.remove()
    (x * 2).sum().backward()
    assert seen == [1]


def test_post_accumulate_hooks_fire_once_the_leaf_is_final_before_the_rest_of_backward():
    x, w1, w2 = randn64(4, 3), randn64(3, 5), randn64(5, 2)
    events = []
    h1 = (x @ w1).tanh()
    h1.register_hook(lambda g: events.append("h1 gradient"))
    for name, w in (("w1", w1), ("w2", w2)):
        w.register_post_accumulate_grad_hook(lambda t, name=name: events.append((name, t.grad.numpy().copy())))
    loss = ((h1 @ w2) * (h1 @ w2)).sum()  # w2 used by two nodes
    loss.backward(retain_graph=True)
    assert [e if isinstance(e, str) else e[0] for e in events] == ["w2", "h1 gradient", "w1"]
    # the hook saw the whole sum over w2's two uses, the same as a reference without hooks
    ref_w1, ref_w2 = (nerve.tensor(w.numpy(), requires_grad=True) for w in (w1, w2))
    r1 = (nerve.tensor(x.numpy()) @ ref_w1).tanh()
    ((r1 @ ref_w2) * (r1 @ ref_w2)).sum().backward()
    np.testing.assert_allclose(events[0][1], ref_w2.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(events[2][1], ref_w1.grad.numpy(), rtol=1e-12)
    # a second backward accumulates, and the hook sees the accumulated .grad
    events.clear()
    loss.backward()
    np.testing.assert_allclose(events[0][1], 2 * ref_w2.grad.numpy(), rtol=1e-12)


def test_post_accumulate_hooks_leaf_only_and_not_for_grad_or_unreached_leaves():
    x, unused = randn64(3), randn64(3)
    fired = []
    for t in (x, unused):
        t.register_post_accumulate_grad_hook(fired.append)
    with pytest.raises(RuntimeError, match="only leaf tensors .* MulBackward"):
        (x * 2).register_post_accumulate_grad_hook(fired.append)
    with pytest.raises(RuntimeError, match="does not require grad"):
        nerve.ones(2).register_post_accumulate_grad_hook(fired.append)
    nerve.autograd.grad((x * x).sum(), x)  # grad() leaves .grad alone, so no hook
    assert fired == []
    (x * 3 + unused.detach()).sum().backward()
    assert fired == [x] and unused.grad is None
    (x * x).sum().backward(create_graph=True)
    assert fired == [x, x] and x.grad.requires_grad


def test_inplace_change_of_a_saved_input_is_detected():
    w = randn64(3)
    c = nerve.ones(3, dtype=nerve.float64)
    loss = (w * c).sum()
    c += 1
    with pytest.raises(RuntimeError, match=r"MulBackward: input 1 .* modified in place"):
        loss.backward()


def test_inplace_on_input_not_needed_by_backward_is_fine():
    w = randn64(3)
    c = nerve.ones(3, dtype=nerve.float64)
    loss = (w + c).sum()
    c += 1
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), 1.0)


def test_inplace_on_tensor_requiring_grad_is_refused_outside_no_grad():
    w = randn64(3)
    with pytest.raises(RuntimeError, match="in-place"):
        w += 1
    with nerve.no_grad():
        w -= 1.0


def test_mixed_precision_gradient_is_cast_to_input_dtype():
    w = nerve.randn(3, requires_grad=True)
    x = nerve.randn(3, dtype=nerve.float64)
    (w * x).sum().backward()
    assert w.grad.dtype == np.float32


def test_create_graph_gradient_is_differentiable_through_parameters():
    # gradient penalty: d/dw of ||d(w x)/dx||^2 = 2 w (for scalar w, x)
    w = nerve.tensor(1.5, dtype=nerve.float64, requires_grad=True)
    x = nerve.tensor(0.3, dtype=nerve.float64, requires_grad=True)
    (gx,) = nerve.grad(nerve.tanh(w * x), x, create_graph=True)
    (gx * gx).backward()
    t = math.tanh(1.5 * 0.3)
    dgx_dw = (1 - t * t) + 1.5 * (-2 * t * (1 - t * t)) * 0.3
    np.testing.assert_allclose(w.grad.item(), 2 * (1 - t * t) * 1.5 * dgx_dw, rtol=1e-12)
