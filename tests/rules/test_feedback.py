"""Feedback alignment, sign symmetry and direct feedback alignment against NumPy implementations of the papers'
formulas; the transposed feedback reproduces backprop exactly; state, errors, and a task each rule learns."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.rules import Backprop, DirectFeedbackAlignment, FeedbackAlignment, alignment, angle
from tests.helpers import np_softmax


def mlp(*sizes, act=nn.Tanh, bias=True):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers).to(nerve.float64)


def grads_with(model, rule, x, y, loss=F.cross_entropy):
    model.zero_grad()
    if rule is None:
        out = loss(model(x), y)
    else:
        with rule:
            out = loss(model(x), y)
    out.backward()
    return [p.grad.data.copy() for p in model.parameters()]


def data(n=6, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return (nerve.tensor(rng.normal(size=(n, d))), nerve.tensor(rng.integers(0, k, n)))


class Res(nn.Module):
    """A residual block with batch norm: a model whose forward the rules must not need to change."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding="same")
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        h = F.relu(self.bn(self.conv1(x)))
        h = h + F.relu(self.conv2(h))
        return self.head(self.pool(h).flatten(1))


@pytest.mark.parametrize("build, shape", [
    (lambda: mlp(5, 7, 6, 3), (6, 5)),
    (lambda: mlp(5, 7, 3, act=nn.ReLU), (6, 5)),
    (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, stride=2), nn.Sigmoid(),
                           nn.Flatten(), nn.Linear(27, 3)).to(nerve.float64), (6, 2, 8, 8)),
    (lambda: Res().to(nerve.float64), (6, 2, 6, 6)),
])
def test_transpose_feedback_is_backprop(build, shape):
    nerve.manual_seed(1)
    model = build()
    x, y = nerve.randn(*shape, dtype=nerve.float64), nerve.tensor([0, 1, 2, 0, 1, 2])
    bp = grads_with(model, None, x, y)
    for rule in (FeedbackAlignment(model, feedback="transpose"), Backprop(model)):
        for a, b in zip(bp, grads_with(model, rule, x, y)):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-10)


def np_fa_mlp(ws, bs, b_mats, x, y, act="tanh"):
    """Feedback alignment on an MLP, in NumPy: the error goes back through B_l in place of W_l (Lillicrap)."""
    hs, zs = [x], []
    for i, (w, b) in enumerate(zip(ws, bs)):
        z = hs[-1] @ w.T + b
        zs.append(z)
        hs.append(np.tanh(z) if i < len(ws) - 1 else z)
    n = len(x)
    delta = (np_softmax(hs[-1], -1) - np.eye(hs[-1].shape[1])[y]) / n
    grads = []
    for i in reversed(range(len(ws))):
        grads[:0] = [delta.T @ hs[i], delta.sum(0)]
        if i:
            delta = (delta @ b_mats[i]) * (1 - np.tanh(zs[i - 1]) ** 2)
    return grads


def test_random_and_sign_feedback_match_numpy():
    nerve.manual_seed(0)
    model = mlp(5, 7, 6, 3)
    x, y = data()
    ws = [model[i].weight.data for i in (0, 2, 4)]
    bs = [model[i].bias.data for i in (0, 2, 4)]
    rule = FeedbackAlignment(model, seed=3)
    b_mats = [rule.buffers[f"B.{i}"].data for i in ("0", "2", "4")]
    for b, w in zip(b_mats, ws):
        assert b.shape == w.shape and np.abs(b).max() <= 1 / np.sqrt(w.shape[1])
        assert not np.allclose(b, w)
    for got, want in zip(grads_with(model, rule, x, y), np_fa_mlp(ws, bs, b_mats, x.data, y.data)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    sign = FeedbackAlignment(model, feedback="sign")
    signs = [np.sign(w) * np.abs(w).mean() for w in ws]
    for got, want in zip(grads_with(model, sign, x, y), np_fa_mlp(ws, bs, signs, x.data, y.data)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    scaled = FeedbackAlignment(model, seed=3, scale=2.0)
    np.testing.assert_allclose(scaled.buffers["B.2"].data, 2 * b_mats[1])


def test_conv_feedback_is_the_input_gradient_through_b():
    """For a convolution, the stand-in for the input gradient is the gradient of the same convolution with B."""
    nerve.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1).to(nerve.float64)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), conv, nn.Flatten(), nn.Linear(4 * 4 * 4, 2)).to(nerve.float64)
    rule = FeedbackAlignment(model, seed=5)
    x = nerve.randn(2, 2, 7, 7, dtype=nerve.float64)
    h = model[0](x).detach().requires_grad_()
    out = F.conv2d(h, rule.buffers["B.1"], conv.bias.detach(), stride=2, padding=1)
    g = nerve.randn(*out.shape, dtype=nerve.float64)
    (want,) = nerve.grad(out, h, g)
    with rule:
        got_h = model[0](x)
        got = model[1](got_h)
    (mine,) = nerve.grad(got, got_h, g)
    np.testing.assert_allclose(mine.data, want.data, rtol=1e-10)


def np_dfa(ws, bs, b_mats, x, y):
    """Direct feedback alignment (Nøkland 2016), in NumPy: hidden layer l gets (B_l e) * f'(a_l)."""
    hs, zs = [x], []
    for i, (w, b) in enumerate(zip(ws, bs)):
        z = hs[-1] @ w.T + b
        zs.append(z)
        hs.append(np.tanh(z) if i < len(ws) - 1 else z)
    e = (np_softmax(hs[-1], -1) - np.eye(hs[-1].shape[1])[y]) / len(x)
    grads = [e.T @ hs[-2], e.sum(0)]
    for i in reversed(range(len(ws) - 1)):
        delta = (e @ b_mats[i + 1].T) * (1 - np.tanh(zs[i]) ** 2)
        grads[:0] = [delta.T @ hs[i], delta.sum(0)]
    return grads


def test_dfa_matches_numpy():
    nerve.manual_seed(0)
    model = mlp(5, 7, 6, 3)
    x, y = data()
    rule = DirectFeedbackAlignment(model, seed=4)
    assert [tuple(b.shape) for b in rule.state_dict().values()] == [(7, 3), (6, 3)]
    ws = [model[i].weight.data for i in (0, 2, 4)]
    bs = [model[i].bias.data for i in (0, 2, 4)]
    b_mats = [None, rule.buffers["B.2"].data, rule.buffers["B.4"].data]
    for got, want in zip(grads_with(model, rule, x, y), np_dfa(ws, bs, b_mats, x.data, y.data)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_dfa_on_a_cnn_projects_onto_feature_maps():
    nerve.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).to(nerve.float64)
    rule = DirectFeedbackAlignment(model, seed=0)
    x, y = nerve.randn(4, 1, 6, 6, dtype=nerve.float64), nerve.tensor([0, 1, 1, 0])
    grads_with(model, rule, x, y)
    assert tuple(rule.buffers["B.3"].shape) == (48, 2)
    again = DirectFeedbackAlignment(model, seed=0)
    grads_with(model, again, x, y)
    np.testing.assert_array_equal(again.buffers["B.3"].data, rule.buffers["B.3"].data)


def test_seeds_are_their_own_stream():
    """A rule's seed=0 after manual_seed(0) must not redraw the model's own initial weights as B."""
    nerve.manual_seed(0)
    model = mlp(5, 7, 3)
    rule = FeedbackAlignment(model, seed=0)
    assert angle(rule.buffers["B.0"], model[0].weight) > 60
    np.testing.assert_array_equal(FeedbackAlignment(model, seed=0).buffers["B.0"].data, rule.buffers["B.0"].data)


def test_state_dict_round_trip_keeps_b(tmp_path):
    nerve.manual_seed(0)
    model = mlp(5, 7, 3)
    for make in (lambda s: FeedbackAlignment(model, seed=s), lambda s: DirectFeedbackAlignment(model, seed=s)):
        rule, other = make(1), make(2)
        nerve.save(rule.state_dict(), tmp_path / "rule.nrv")
        other.load_state_dict(nerve.load(tmp_path / "rule.nrv"))
        for key, b in rule.state_dict().items():
            np.testing.assert_array_equal(other.state_dict()[key].data, b.data)
        with pytest.raises(ValueError, match="shape"):
            other.load_state_dict({k: nerve.zeros(1, 1) for k in rule.state_dict()})


def test_alignment_reports_angles():
    nerve.manual_seed(0)
    model = mlp(5, 7, 6, 3)
    x, y = data(n=32)
    exact = alignment(model, FeedbackAlignment(model, feedback="transpose"), x, y, F.cross_entropy)
    assert all(e["update"] < 1e-3 and e["feedback"] < 1e-3 for e in exact.values())
    fa = alignment(model, FeedbackAlignment(model, seed=0), x, y, "cross_entropy")
    assert fa["4"]["update"] < 1e-3  # the output layer's own update is exact
    assert 0 < fa["2"]["update"] < 180 and 30 < fa["2"]["feedback"] < 150
    assert set(alignment(model, DirectFeedbackAlignment(model, seed=0), x, y, F.cross_entropy)["0"]) == {"update"}
    assert all(p.grad is None for p in model.parameters())


def test_bad_models_are_refused_at_construction():
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        FeedbackAlignment(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="at least two"):
        DirectFeedbackAlignment(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="output layer '2'.*must be a Linear"):
        DirectFeedbackAlignment(nn.Sequential(nn.Linear(3, 2), nn.Unflatten(1, (2, 1, 1)), nn.Conv2d(2, 2, 1)))
    with pytest.raises(ValueError, match="layer '0'.*padding_mode='reflect'"):
        FeedbackAlignment(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")))
    with pytest.raises(ValueError, match="feedback must be"):
        FeedbackAlignment(mlp(2, 2), feedback="mirror")
    with pytest.raises(ValueError, match="layer 'fc'"):
        FeedbackAlignment(mlp(2, 2), layers=["fc"])
    with pytest.raises(TypeError, match="supervised rule"):
        FeedbackAlignment(mlp(2, 2)).step(nerve.zeros(1, 2))
    with pytest.raises(RuntimeError, match="differentiable once"):
        model = mlp(2, 3, 2)
        x = nerve.randn(2, 2, dtype=nerve.float64, requires_grad=True)
        with FeedbackAlignment(model):
            out = model(x).sum()
        nerve.grad(nerve.grad(out, x, create_graph=True)[0].sum(), x)


def test_layers_restrict_the_rule():
    nerve.manual_seed(0)
    model = mlp(5, 7, 6, 3)
    x, y = data()
    only = FeedbackAlignment(model, seed=0, layers=["4"])
    assert list(only.state_dict()) == ["B.4"]
    bp, got = grads_with(model, None, x, y), grads_with(model, only, x, y)
    np.testing.assert_allclose(got[4], bp[4])
    assert not np.allclose(got[0], bp[0])
