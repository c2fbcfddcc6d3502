"""nn.utils.parametrize, parametrizations.weight_norm/spectral_norm and the hook-style weight_norm, against
closed forms (g v / |v|, the largest singular value by SVD) with PyTorch's names."""
import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.nn.utils import parametrizations as P, parametrize

RNG = np.random.default_rng(0)


class Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(0, 1)

    def right_inverse(self, a):
        return a.triu()


class Scale(nn.Module):
    def forward(self, x):
        return 2 * x


def test_register_custom_parametrization_assign_and_remove():
    layer = nn.Linear(3, 3, dtype=nerve.float64)
    w0 = layer.weight.numpy().copy()
    original = layer.weight
    parametrize.register_parametrization(layer, "weight", Symmetric())
    assert type(layer).__name__ == "ParametrizedLinear" and isinstance(layer, nn.Linear)
    assert parametrize.is_parametrized(layer) and parametrize.is_parametrized(layer, "weight")
    assert not parametrize.is_parametrized(layer, "bias")
    assert layer.parametrizations.weight.original is original  # the same Parameter (optimisers keep it)
    np.testing.assert_allclose(layer.weight.numpy(), np.triu(w0) + np.triu(w0, 1).T)
    assert sorted(layer.state_dict()) == ["bias", "parametrizations.weight.original"]
    x = nerve.tensor(RNG.standard_normal((2, 3)))
    w = layer.weight.numpy()
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ w.T + layer.bias.numpy())
    sym = RNG.standard_normal((3, 3))
    sym = sym + sym.T
    layer.weight = nerve.tensor(sym)  # right_inverse sets the original
    np.testing.assert_allclose(layer.weight.numpy(), sym)
    parametrize.register_parametrization(layer, "weight", Scale())  # appended: applied after Symmetric
    np.testing.assert_allclose(layer.weight.numpy(), 2 * sym)
    layer(x).sum().backward()
    assert original.grad is not None
    with parametrize.cached():
        assert layer.weight is layer.weight
    assert layer.weight is not layer.weight
    parametrize.remove_parametrizations(layer, "weight")
    assert type(layer) is nn.Linear and not parametrize.is_parametrized(layer)
    np.testing.assert_allclose(layer.weight.numpy(), 2 * sym)
    assert sorted(layer.state_dict()) == ["bias", "weight"] and layer.weight is original
    with pytest.raises(ValueError, match="has no parametrization on 'weight'"):
        parametrize.remove_parametrizations(layer, "weight")
    with pytest.raises(ValueError, match="has no parameter 'kernel'"):
        parametrize.register_parametrization(layer, "kernel", Scale())


def test_weight_norm_parametrization_closed_form_and_gradients():
    layer = nn.Conv2d(2, 3, 3, dtype=nerve.float64)
    w = layer.weight.numpy().copy()
    P.weight_norm(layer)
    g = layer.parametrizations.weight.original0
    v = layer.parametrizations.weight.original1
    np.testing.assert_allclose(g.numpy(), np.sqrt((w ** 2).sum(axis=(1, 2, 3), keepdims=True)))
    np.testing.assert_allclose(layer.weight.numpy(), w)
    with nerve.no_grad():
        g.mul_(2.0)
    vv = v.numpy()
    ref = 2 * np.sqrt((w ** 2).sum(axis=(1, 2, 3), keepdims=True)) * vv / np.sqrt((vv ** 2).sum(axis=(1, 2, 3),
                                                                                                keepdims=True))
    np.testing.assert_allclose(layer.weight.numpy(), ref)
    gg, vt = nerve.tensor(g.numpy(), requires_grad=True), nerve.tensor(v.numpy(), requires_grad=True)
    fn = layer.parametrizations.weight[0]
    assert nerve.gradcheck(fn, [gg, vt]) and nerve.gradgradcheck(fn, [gg, vt])
    whole = P.weight_norm(nn.Linear(3, 2, dtype=nerve.float64), dim=None)
    assert whole.parametrizations.weight.original0.shape == ()
    parametrize.remove_parametrizations(layer, "weight")
    np.testing.assert_allclose(layer.weight.numpy(), ref)


def test_spectral_norm_parametrization_against_svd():
    nerve.manual_seed(0)
    layer = nn.Linear(6, 4, dtype=nerve.float64)
    w = layer.weight.numpy().copy()
    P.spectral_norm(layer)
    assert sorted(layer.state_dict()) == ["bias", "parametrizations.weight.0._u", "parametrizations.weight.0._v",
                                          "parametrizations.weight.original"]
    for _ in range(30):  # training reads advance the power iteration
        weight = layer.weight
    np.testing.assert_allclose(weight.numpy(), w / np.linalg.svd(w, compute_uv=False)[0], rtol=1e-8)
    layer.eval()
    u = layer.parametrizations.weight[0]._u.numpy().copy()
    _ = layer.weight
    np.testing.assert_array_equal(layer.parametrizations.weight[0]._u.numpy(), u)  # eval: no iteration
    transposed = P.spectral_norm(nn.ConvTranspose2d(3, 2, 2, dtype=nerve.float64))
    assert transposed.parametrizations.weight[0]._u.shape == (2,)  # dim 1: output channels
    bias = P.spectral_norm(nn.Linear(2, 3, dtype=nerve.float64), "bias")
    np.testing.assert_allclose(np.linalg.norm(bias.bias.numpy()), 1.0)


@pytest.mark.parametrize("dim", [0, 1, None])
def test_hook_weight_norm(dim):
    layer = nn.Linear(4, 3, dtype=nerve.float64)
    w = layer.weight.numpy().copy()
    nn.utils.weight_norm(layer, dim=dim)
    assert sorted(n for n, _ in layer.named_parameters()) == ["bias", "weight_g", "weight_v"]
    axes = None if dim is None else tuple(i for i in range(2) if i != dim)
    np.testing.assert_allclose(layer.weight_g.numpy(), np.sqrt((w ** 2).sum(axis=axes, keepdims=dim is not None)))
    with nerve.no_grad():
        layer.weight_g.mul_(3.0)
    x = nerve.tensor(RNG.standard_normal((2, 4)))
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ (3 * w).T + layer.bias.numpy())
    layer(x).sum().backward()
    assert layer.weight_g.grad is not None and layer.weight_v.grad is not None
    nn.utils.remove_weight_norm(layer)
    np.testing.assert_allclose(layer.weight.numpy(), 3 * w)
    with pytest.raises(ValueError, match="remove_weight_norm: weight_norm of 'weight' not found"):
        nn.utils.remove_weight_norm(layer)


def test_weight_normed_regression_learns():
    nerve.manual_seed(0)
    x = nerve.tensor(RNG.standard_normal((64, 3)))
    y = x @ nerve.tensor([[1.5], [-2.0], [0.5]])
    layer = P.weight_norm(nn.Linear(3, 1, dtype=nerve.float64))
    opt = nerve.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(300):
        loss = ((layer(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
    np.testing.assert_allclose(layer.weight.detach().numpy(), [[1.5, -2.0, 0.5]], atol=0.03)


def skew_exp(a):
    """exp of a skew-symmetric matrix by its eigen-decomposition (normal, so unitary eigenvectors)."""
    vals, vecs = np.linalg.eig(a)
    return (vecs @ np.diag(np.exp(vals)) @ np.linalg.inv(vecs)).real


@pytest.mark.parametrize("shape,kind", [((4, 4), None), ((4, 4), "cayley"), ((5, 3), None), ((3, 5), "matrix_exp"),
                                        ((4, 4), "householder")])
def test_orthogonal_maps_against_closed_forms(shape, kind):
    w = RNG.standard_normal(shape)
    layer = nn.Linear(shape[1], shape[0], dtype=nerve.float64)
    layer.weight.data[...] = w
    P.orthogonal(layer, orthogonal_map=kind)
    kind = kind or ("matrix_exp" if shape[0] == shape[1] else "householder")
    tall = w if shape[0] >= shape[1] else w.T
    q, r = np.linalg.qr(tall)
    start = q * np.sign(np.diag(r))  # the orthogonal factor of the weight: where the trivialisation starts
    got = layer.weight.numpy() if shape[0] >= shape[1] else layer.weight.numpy().T
    np.testing.assert_allclose(got, start, atol=1e-12)
    assert sorted(layer.state_dict()) == ["bias", "parametrizations.weight.0.base", "parametrizations.weight.original"]
    x = RNG.standard_normal(shape) * 0.3
    layer.parametrizations.weight.original.data[...] = x
    n, k = max(shape), min(shape)
    xt = x if shape[0] >= shape[1] else x.T
    base = layer.parametrizations.weight[0].base.numpy()
    if kind == "householder":
        qh = np.eye(n)
        for i in range(k):
            v = np.tril(xt, -1)[:, i] + np.eye(n, k)[:, i]
            qh = qh @ (np.eye(n) - 2 / (v @ v) * np.outer(v, v))
        inner = qh[:, :k] * np.trunc(np.diag(xt))
    else:
        low = np.concatenate([np.tril(xt), np.zeros((n, n - k))], 1)
        a = low - low.T
        inner = (skew_exp(a) if kind == "matrix_exp" else np.linalg.solve(np.eye(n) - a / 2, np.eye(n) + a / 2))[:, :k]
    ref = base @ inner
    got = layer.weight.numpy() if shape[0] >= shape[1] else layer.weight.numpy().T
    np.testing.assert_allclose(got, ref, atol=1e-10)
    if kind != "householder":  # semi-orthogonal for every original (Householder's diagonal scale may not be +-1)
        np.testing.assert_allclose(got.T @ got, np.eye(k), atol=1e-10)


def test_orthogonal_learns_a_rotation():
    """Orthogonal Procrustes by gradient descent: the parametrized weight finds the rotation mapping X to Y."""
    nerve.manual_seed(0)
    q, _ = np.linalg.qr(RNG.standard_normal((3, 3)))
    layer = P.orthogonal(nn.Linear(3, 3, bias=False, dtype=nerve.float64))
    if np.linalg.det(q) * np.linalg.det(layer.weight.numpy()) < 0:  # exp maps stay on the start's component
        q[:, 0] *= -1
    x = RNG.standard_normal((50, 3))
    y = x @ q.T
    opt = nerve.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(300):
        loss = ((layer(nerve.tensor(x)) - nerve.tensor(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = layer.weight.detach().numpy()
    np.testing.assert_allclose(w.T @ w, np.eye(3), atol=1e-10)
    assert loss.item() < 1e-6
    np.testing.assert_allclose(w, q, atol=1e-3)
    with pytest.raises(ValueError, match="orthogonal_map must be"):
        P.orthogonal(nn.Linear(2, 2), orthogonal_map="qr")
