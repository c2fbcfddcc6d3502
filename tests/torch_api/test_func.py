"""``nerve.func`` (torch.func): grad, grad_and_value, nesting, vjp, jvp, jacrev, hessian, vmap and functional_call,
with per-sample gradients checked against one backward per sample."""
import numpy as np
import pytest

import nerve
from nerve import func, nn
from tests.helpers import T


def test_grad_nests_and_takes_argnums_and_aux():
    x = T([0.5, -1.0, 2.0])
    cube = lambda t: (t ** 3).sum()  # noqa: E731
    np.testing.assert_allclose(func.grad(cube)(x).numpy(), 3 * x.numpy() ** 2)
    # d/dx of sum(d/dx sum(x^3)) = 6x: the inner gradient stays differentiable under the outer transform
    np.testing.assert_allclose(func.grad(lambda t: func.grad(cube)(t).sum())(x).numpy(), 6 * x.numpy())
    gx, gy = func.grad(lambda a, b: (a * b).sum(), argnums=(0, 1))(x, T([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(gx.numpy(), [1, 2, 3])
    np.testing.assert_allclose(gy.numpy(), x.numpy())
    g, (value, aux) = func.grad_and_value(lambda t: ((t * t).sum(), "aux"), has_aux=True)(x)
    assert aux == "aux" and value.item() == pytest.approx(5.25) and g.grad_fn is None
    with pytest.raises(RuntimeError, match="one-element tensor"):
        func.grad(lambda t: t * 2)(x)
    with pytest.raises(ValueError, match="argnums 3"):
        func.grad(cube, argnums=3)(x)


def test_vjp_jvp_jacrev_hessian():
    x = T([0.3, 0.7])
    out, vjp_fn = func.vjp(lambda t: t.exp(), x)
    np.testing.assert_allclose(vjp_fn(T([1.0, 2.0]))[0].numpy(), [np.exp(0.3), 2 * np.exp(0.7)])
    _, tangent = func.jvp(lambda t: t.exp(), (x,), (T([1.0, 0.0]),))
    np.testing.assert_allclose(tangent.numpy(), [np.exp(0.3), 0.0])
    np.testing.assert_allclose(func.jacrev(lambda t: t.exp())(x).numpy(), np.diag(np.exp(x.numpy())))
    np.testing.assert_allclose(func.jacfwd(lambda t: t.exp())(x).numpy(), np.diag(np.exp(x.numpy())))
    np.testing.assert_allclose(func.hessian(lambda t: (t ** 3).sum())(x).numpy(), np.diag(6 * x.numpy()))


def test_per_sample_gradients_with_vmap_grad_and_functional_call():
    nerve.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(dtype=nerve.float64)
    rng = np.random.default_rng(1)
    xs, ys = T(rng.normal(size=(5, 3))), nerve.tensor(rng.integers(0, 2, 5))
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, x, y):
        out = func.functional_call(model, p, (x.unsqueeze(0),))
        return nn.functional.cross_entropy(out, y.unsqueeze(0))

    per_sample = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, xs, ys)
    assert set(per_sample) == set(params) and per_sample["0.weight"].shape == (5, 4, 3)
    for k in range(5):
        model.zero_grad()
        nn.functional.cross_entropy(model(xs[k:k + 1]), ys[k:k + 1]).backward()
        for name, p in model.named_parameters():
            np.testing.assert_allclose(per_sample[name][k].numpy(), p.grad.numpy(), rtol=1e-12)
    # the module's own parameters are back in place
    assert all(model.get_parameter(n) is p for n, p in model.named_parameters())
    with pytest.raises(ValueError, match=r"has no parameter or buffer \['nope'\]"):
        func.functional_call(model, {"nope": xs}, (xs,))


def test_vmap_dims_and_errors():
    a = T(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(nerve.vmap(lambda r: r * 2)(a).numpy(), 2 * a.numpy())
    np.testing.assert_allclose(nerve.vmap(lambda c: c.sum(), in_dims=1)(a).numpy(), a.numpy().sum(0))
    first, second = nerve.vmap(lambda r: (r, r.sum()), out_dims=(1, 0))(a)
    assert first.shape == (3, 2) and second.shape == (2,)
    with pytest.raises(ValueError, match="must have one size"):
        nerve.vmap(lambda p, q: p + q)(a, T(np.ones((3, 3))))
