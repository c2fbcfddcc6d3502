"""Each attack against an independent reference: closed forms on linear models, plain NumPy loops of the published
update on a tanh MLP, the closed-form minimal perturbation of a linear binary classifier."""
from __future__ import annotations

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.robust import CW, FFGSM, FGM, FGSM, MIFGSM, PGD, PGDL2, DeepFool, MultiAttack, Square, Transfer
from tests.robust.toy import linear_ce_grad, linear_model, mlp, mlp_logits_grad, toy_images, trained_mlp, weights


def batch(n=10, features=12, classes=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.9, size=(n, 1, 3, features // 3)), rng.integers(0, classes, size=n)


# --- one-step attacks: closed forms on a linear softmax model ---------------------------------------------------
def test_fgsm_closed_form_on_linear_model():
    model = linear_model()
    W, b = weights(model)
    x, y = batch()
    out = FGSM(model, eps=0.1)(x, y).numpy()
    np.testing.assert_allclose(out, np.clip(x + 0.1 * np.sign(linear_ce_grad(W, b, x, y)), 0, 1), atol=1e-12)


def test_fgsm_targeted_closed_form_and_bounds_clip():
    model = linear_model()
    W, b = weights(model)
    x, t = batch(seed=2)
    out = FGSM(model, eps=0.3).set_mode_targeted_by_label()(x, t).numpy()
    expected = np.clip(x - 0.3 * np.sign(linear_ce_grad(W, b, x, t)), 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    assert out.min() == 0.0 or out.max() == 1.0  # eps 0.3 from [0.1, 0.9] reaches a bound somewhere


def test_fgm_closed_form_l2():
    model = linear_model()
    W, b = weights(model)
    x, y = batch()
    g = linear_ce_grad(W, b, x, y)
    unit = g / np.linalg.norm(g.reshape(len(g), -1), axis=1).reshape(-1, 1, 1, 1)
    out = FGM(model, eps=0.2, bounds=None)(x, y).numpy()
    np.testing.assert_allclose(out, x + 0.2 * unit, atol=1e-12)


def test_fgsm_is_the_optimal_linf_attack_of_a_binary_linear_model_and_monotone_in_eps():
    # for logits (0, w.x + b) the L-inf distance to the boundary is |w.x + b| / ||w||_1: FGSM flips the label
    # exactly when eps exceeds it (no bounds), so its accuracy falls with eps and matches the closed form
    rng = np.random.default_rng(3)
    w, b0 = rng.normal(size=8), 0.3
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 2)).to(dtype=np.float64)
    model[1].weight.data[:] = np.stack([np.zeros(8), w])
    model[1].bias.data[:] = [0.0, b0]
    x = rng.normal(size=(200, 1, 8))
    f = x.reshape(200, 8) @ w + b0
    y = (f > 0).astype(np.int64)
    dist = np.abs(f) / np.abs(w).sum()
    accs = []
    for eps in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8):
        adv = FGSM(model, eps=eps, bounds=None)(x, y).numpy()
        pred = (adv.reshape(200, 8) @ w + b0 > 0).astype(np.int64)
        np.testing.assert_array_equal(pred == y, dist > eps)
        accs.append((pred == y).mean())
    assert all(a >= b for a, b in zip(accs, accs[1:])) and accs[0] == 1.0 and accs[-1] < accs[0]


# --- iterative attacks against NumPy loops on a tanh MLP --------------------------------------------------------
def numpy_pgd(params, x, y, eps, alpha, steps, start, norm="Linf", loss="ce", decay=None):
    x_adv = np.clip(x + start, 0, 1)
    momentum = np.zeros_like(x)
    for _ in range(steps):
        _, g = mlp_logits_grad(params, x_adv, y, loss)
        if decay is not None:
            momentum = decay * momentum + g / np.abs(g).reshape(len(g), -1).mean(axis=1).reshape(-1, 1, 1, 1)
            g = momentum
        if norm == "Linf":
            x_adv = x_adv + alpha * np.sign(g)
            delta = np.clip(x_adv - x, -eps, eps)
        else:
            x_adv = x_adv + alpha * g / np.linalg.norm(g.reshape(len(g), -1), axis=1).reshape(-1, 1, 1, 1)
            delta = x_adv - x
            n = np.linalg.norm(delta.reshape(len(x), -1), axis=1).reshape(-1, 1, 1, 1)
            delta = delta * np.minimum(1, eps / n)
        x_adv = np.clip(x + delta, 0, 1)
    return x_adv


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_pgd_matches_numpy_loop_with_its_random_start(loss):
    model = mlp()
    x, y = batch(n=16)
    out = PGD(model, eps=0.1, alpha=0.02, steps=7, loss=loss, seed=5)(x, y).numpy()
    start = np.random.default_rng(5).uniform(-0.1, 0.1, size=x.shape)
    np.testing.assert_allclose(out, numpy_pgd(weights(model), x, y, 0.1, 0.02, 7, start, loss=loss), atol=1e-10)


def test_pgdl2_matches_numpy_loop():
    model = mlp()
    x, y = batch(n=16)
    out = PGDL2(model, eps=0.5, alpha=0.1, steps=8, random_start=False)(x, y).numpy()
    ref = numpy_pgd(weights(model), x, y, 0.5, 0.1, 8, np.zeros_like(x), norm="L2")
    np.testing.assert_allclose(out, ref, atol=1e-10)
    assert np.linalg.norm((out - x).reshape(16, -1), axis=1).max() <= 0.5 + 1e-9


def test_mifgsm_matches_numpy_loop():
    model = mlp()
    x, y = batch(n=16)
    out = MIFGSM(model, eps=0.1, alpha=0.02, steps=6, decay=1.0)(x, y).numpy()
    ref = numpy_pgd(weights(model), x, y, 0.1, 0.02, 6, np.zeros_like(x), decay=1.0)
    np.testing.assert_allclose(out, ref, atol=1e-10)


def test_ffgsm_matches_numpy_formula():
    model = mlp()
    x, y = batch(n=16)
    out = FFGSM(model, eps=0.1, alpha=0.125, seed=2)(x, y).numpy()
    start = np.clip(x + np.random.default_rng(2).uniform(-0.1, 0.1, size=x.shape), 0, 1)
    _, g = mlp_logits_grad(weights(model), start, y)
    ref = np.clip(x + np.clip(start + 0.125 * np.sign(g) - x, -0.1, 0.1), 0, 1)
    np.testing.assert_allclose(out, ref, atol=1e-12)


class Recorder:
    """A model that records every input it is given."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def __call__(self, x):
        self.seen.append(x.numpy().copy())
        return self.model(x)

    def modules(self):
        return self.model.modules()

    def parameters(self):
        return self.model.parameters()


@pytest.mark.parametrize("make", [
    lambda m: PGD(m, eps=0.05, alpha=0.03, steps=6), lambda m: MIFGSM(m, eps=0.05, alpha=0.02, steps=6),
    lambda m: PGD(m, eps=0.05, alpha=0.02, steps=4, restarts=3), lambda m: Square(m, eps=0.05, n_queries=30)])
def test_every_iterate_stays_in_the_ball_and_the_bounds(make):
    rec = Recorder(mlp(features=36))
    x, y = toy_images(n=20)
    x[:3] = 0.0  # samples at the bounds
    make(rec)(x, y)
    assert len(rec.seen) > 5
    for seen in rec.seen:
        assert seen.min() >= 0 and seen.max() <= 1
        assert np.abs(seen - x[:len(seen)] if len(seen) == len(x) else 0).max() <= 0.05 + 1e-12


def test_pgdl2_iterates_stay_in_the_l2_ball():
    rec = Recorder(mlp(features=36))
    x, y = toy_images(n=20)
    PGDL2(rec, eps=0.4, alpha=0.3, steps=5)(x, y)
    for seen in rec.seen:
        assert np.linalg.norm((seen - x).reshape(len(x), -1), axis=1).max() <= 0.4 + 1e-9
        assert seen.min() >= 0 and seen.max() <= 1


@pytest.mark.parametrize("make", [lambda m: FGSM(m, eps=0), lambda m: FGM(m, eps=0), lambda m: PGD(m, eps=0),
                                  lambda m: PGDL2(m, eps=0), lambda m: MIFGSM(m, eps=0), lambda m: FFGSM(m, eps=0),
                                  lambda m: Square(m, eps=0)])
def test_eps_zero_returns_the_inputs(make):
    x, y = toy_images(n=10)
    np.testing.assert_array_equal(make(mlp(features=36))(x, y).numpy(), x)


# --- strength on a trained model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    nerve.manual_seed(0)
    x, y = toy_images(n=400)
    return trained_mlp(x[:300], y[:300]), x[300:], y[300:]


def accuracy(model, x, y):
    with nerve.no_grad():
        return float((model(nerve.tensor(x)).numpy().argmax(axis=1) == y).mean())


def test_pgd_is_at_least_as_strong_as_fgsm(trained):
    model, x, y = trained
    assert accuracy(model, x, y) > 0.95
    for eps in (0.1, 0.15):
        fgsm = accuracy(model, FGSM(model, eps=eps)(x, y).numpy(), y)
        pgd = accuracy(model, PGD(model, eps=eps, alpha=eps / 4, steps=20)(x, y).numpy(), y)
        assert pgd <= fgsm
    assert pgd < 0.5


def test_cw_finds_smaller_perturbations_than_pgd_l2_at_equal_success(trained):
    # PGD-L2 at the smallest radius (on a grid) where it fools as many samples as CW does: its perturbations fill
    # that radius, CW's are each sample's own minimum; and per sample, CW is about PGD-L2's smallest radius
    model, x, y = trained
    fooled = lambda a: model(nerve.tensor(a)).numpy().argmax(axis=1) != y  # noqa: E731
    norms = lambda a: np.linalg.norm((a - x).reshape(len(x), -1), axis=1)  # noqa: E731
    cw = CW(model, c=10.0, steps=1000, lr=0.01)(x, y).numpy()
    with nerve.no_grad():
        cw_fooled = fooled(cw)
        assert cw_fooled.mean() > 0.9
        smallest = np.full(len(x), np.inf)
        at_equal_success = None
        for r in np.arange(2.0, 0.0, -0.05):
            adv = PGDL2(model, eps=r, alpha=r / 4, steps=20)(x, y).numpy()
            hit = fooled(adv)
            smallest[hit] = r
            if hit.mean() >= cw_fooled.mean():
                at_equal_success = (hit, norms(adv))
    hit, pgd_norms = at_equal_success
    assert np.mean(norms(cw)[cw_fooled]) < 0.8 * np.mean(pgd_norms[hit])
    both = cw_fooled & np.isfinite(smallest)
    assert abs(np.median(norms(cw)[both]) / np.median(smallest[both]) - 1) < 0.15


def test_square_agrees_with_pgd_on_a_smooth_model(trained):
    model, x, y = trained
    pgd = accuracy(model, PGD(model, eps=0.15, alpha=0.02, steps=20)(x, y).numpy(), y)
    square = accuracy(model, Square(model, eps=0.15, n_queries=300, seed=0)(x, y).numpy(), y)
    assert square < accuracy(model, x, y) - 0.3  # it attacks
    assert abs(square - pgd) <= 0.1


def test_square_on_vectors_is_square_on_one_pixel_high_images(trained):
    model, x, y = trained
    flat = nerve.nn.Sequential(nerve.nn.Flatten(), *list(model.children())[1:])
    a = Square(model, eps=0.15, n_queries=50, seed=4)(x.reshape(100, 1, 1, 36), y).numpy()
    b = Square(flat, eps=0.15, n_queries=50, seed=4)(x.reshape(100, 36), y).numpy()
    np.testing.assert_array_equal(a.reshape(100, 36), b)
    assert np.abs(b - x.reshape(100, 36)).max() <= 0.15 + 1e-12 and (b != x.reshape(100, 36)).any()


def test_targeted_modes(trained):
    model, x, y = trained
    with nerve.no_grad():
        logits = model(nerve.tensor(x)).numpy()
    target = (y + 1) % 4
    adv = PGD(model, eps=0.3, alpha=0.03, steps=30).set_mode_targeted_by_label()(x, target).numpy()
    assert accuracy(model, adv, target) > 0.9
    atk = PGD(model, eps=0.3, alpha=0.03, steps=30, seed=1).set_mode_targeted_random()
    drawn = atk._targets(x, y, logits)
    assert (drawn != y).all() and len(set(drawn.tolist())) > 1
    least = PGD(model, eps=0.3).set_mode_targeted_least_likely()._targets(x, y, logits)
    np.testing.assert_array_equal(least, logits.argmin(axis=1))
    mapped = FGSM(model, eps=0.1).set_mode_targeted_by_function(lambda xs, ys: (ys + 2) % 4)
    np.testing.assert_array_equal(mapped._targets(x, y, logits), (y + 2) % 4)


# --- minimal-norm attacks against the closed-form minimal perturbation ------------------------------------------
def binary_linear(features=10, seed=4):
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=features), 0.2
    model = nn.Sequential(nn.Flatten(), nn.Linear(features, 2)).to(dtype=np.float64)
    model[1].weight.data[:] = np.stack([np.zeros(features), w])
    model[1].bias.data[:] = [0.0, b]
    x = rng.normal(size=(12, 1, features))
    f = x.reshape(12, -1) @ w + b
    return model, w, x, f, (f > 0).astype(np.int64)


def test_deepfool_on_a_linear_binary_classifier_is_the_closed_form_step():
    model, w, x, f, y = binary_linear()
    out = DeepFool(model, overshoot=0.02, bounds=None)(x, y).numpy()
    # one step: r = (|f| / ||w|| + 1e-4) * (-sign f) w / ||w||, scaled by 1 + overshoot
    norm = np.linalg.norm(w)
    r = ((np.abs(f) / norm + 1e-4) * -np.sign(f))[:, None] * w / norm
    np.testing.assert_allclose(out.reshape(12, -1), x.reshape(12, -1) + 1.02 * r, atol=1e-10)


def test_deepfool_multiclass_first_step_goes_to_the_nearest_linear_boundary():
    model = linear_model(features=12, classes=5)
    W, b = weights(model)
    x, _ = batch(n=8, classes=5)
    z = x.reshape(8, -1) @ W.T + b
    y = z.argmax(axis=1)
    out = DeepFool(model, overshoot=0.0, steps=1, bounds=None)(x, y).numpy().reshape(8, -1)
    for i in range(8):
        d = [(abs(z[i, k] - z[i, y[i]]) / np.linalg.norm(W[k] - W[y[i]]), k) for k in range(5) if k != y[i]]
        dist, k = min(d)
        step = (dist + 1e-4) * (W[k] - W[y[i]]) / np.linalg.norm(W[k] - W[y[i]])
        np.testing.assert_allclose(out[i], x[i].ravel() + step, atol=1e-10)


def test_cw_on_a_linear_binary_classifier_reaches_the_minimal_perturbation():
    model, w, x, f, y = binary_linear()
    out = CW(model, c=10.0, steps=1000, lr=0.005, bounds=None)(x, y).numpy().reshape(12, -1)
    delta = out - x.reshape(12, -1)
    minimal = np.abs(f) / np.linalg.norm(w)
    found = np.linalg.norm(delta, axis=1)
    assert ((out @ w + 0.2 > 0) != y.astype(bool)).all()  # all fooled
    # Adam's step (lr) limits how close it gets: a few thousandths
    assert (found >= minimal * (1 - 1e-9)).all() and (found <= minimal * 1.01 + 2e-3).all()
    cos = np.abs(delta @ w) / (found * np.linalg.norm(w))
    assert cos[minimal > 0.1].min() > 0.995


def test_cw_stays_in_the_bounds_and_returns_the_input_where_it_fails():
    model = mlp(features=36)
    x, _ = toy_images(n=12)
    with nerve.no_grad():
        y = model(nerve.tensor(x)).numpy().argmax(axis=1)  # every sample correct
    out = CW(model, c=1e-4, steps=5)(x, y).numpy()  # too weak to fool anything
    np.testing.assert_array_equal(out, x)
    strong = CW(model, c=10.0, steps=50, lr=0.05)(x, y).numpy()
    assert strong.min() >= 0 and strong.max() <= 1 and (strong != x).any()


# --- transfer, worst case, normalisation -------------------------------------------------------------------
def test_transfer_crafts_on_the_surrogate_only(trained):
    model, x, y = trained
    surrogate = mlp(features=36, hidden=32, seed=3)
    source = PGD(surrogate, eps=0.1, alpha=0.02, steps=5, seed=7)
    out = Transfer(model, source)(x, y).numpy()
    again = PGD(surrogate, eps=0.1, alpha=0.02, steps=5, seed=7)(x, y).numpy()
    np.testing.assert_array_equal(out, again)
    assert repr(Transfer(model, source).at_eps(0.2)).startswith("Transfer(PGD(eps=0.2")


def test_multiattack_keeps_the_first_success_per_sample(trained):
    model, x, y = trained
    weak, strong = FGSM(model, eps=0.1), PGD(model, eps=0.15, alpha=0.02, steps=20, seed=1)
    out = MultiAttack([weak, strong])(x, y).numpy()
    fooled = lambda a: (lambda p: p != y)(model(nerve.tensor(a)).numpy().argmax(axis=1))  # noqa: E731
    with nerve.no_grad():
        by_weak = fooled(weak(x, y).numpy())
        by_strong = fooled(PGD(model, eps=0.15, alpha=0.02, steps=20, seed=1)(x, y).numpy())
        got = fooled(out)
    assert (got >= by_weak).all()  # FGSM is deterministic: its successes are kept
    assert got.sum() >= (by_weak | by_strong).sum() - 2  # PGD's draws differ on the smaller batch
    np.testing.assert_array_equal(out[by_weak], weak(x, y).numpy()[by_weak])
    assert np.abs(out - x).max() <= 0.15 + 1e-12


def test_normalization_used_matches_a_model_that_normalises_itself():
    inner = mlp(features=36)
    mean, std = np.array([0.4]), np.array([0.2])

    class Normalised(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner((x - nerve.tensor(mean.reshape(1, 1, 1, 1))) / nerve.tensor(std.reshape(1, 1, 1, 1)))

    x, y = toy_images(n=10)
    a = PGD(Normalised(), eps=0.1, alpha=0.02, steps=5, random_start=False)(x, y).numpy()
    b = PGD(inner, eps=0.1, alpha=0.02, steps=5, random_start=False).set_normalization_used(mean, std)(x, y).numpy()
    np.testing.assert_allclose(a, b, atol=1e-12)
