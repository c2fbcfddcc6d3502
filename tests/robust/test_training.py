"""Adversarial training steps: each method's loss against its formula recomputed independently, the logs, the ε ramp,
and a small task on which PGD training buys robustness; the losses against NumPy."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import nerve
from nerve.robust import FFGSM, FGSM, PGD, AdversarialStep, attack_loss, margin, trades_kl
from tests.robust.test_evaluate import predict
from tests.robust.toy import mlp, softmax, toy_images, trained_mlp


def np_ce(z, y):
    return float(-np.log(softmax(z)[np.arange(len(y)), y]).mean())


def logits(model, x):
    with nerve.no_grad():
        return model(nerve.tensor(x)).numpy()


@pytest.mark.parametrize("method", ["fgsm", "pgd", "fast", "trades"])
def test_step_loss_is_the_published_objective(method):
    x, y = toy_images(n=32)
    model = mlp(features=36)
    twin = copy.deepcopy(model)
    step = AdversarialStep(method, eps=0.1, steps=3, beta=2.0, mix=0.3)
    nerve.manual_seed(11)
    logs = step(model, (nerve.tensor(x), nerve.tensor(y)), nerve.optim.SGD(model.parameters(), lr=0.1))
    nerve.manual_seed(11)
    if method == "fgsm":
        adv = FGSM(twin, eps=0.1)(x, y).numpy()
        expected = 0.3 * np_ce(logits(twin, x), y) + 0.7 * np_ce(logits(twin, adv), y)
    elif method == "pgd":
        adv = PGD(twin, eps=0.1, alpha=2.5 * 0.1 / 3, steps=3)(x, y).numpy()
        expected = np_ce(logits(twin, adv), y)
    elif method == "fast":
        adv = FFGSM(twin, eps=0.1, alpha=0.125)(x, y).numpy()
        expected = np_ce(logits(twin, adv), y)
    else:
        adv = step.attack(twin, 0.1)(x, y).numpy()
        p, q = softmax(logits(twin, x)), softmax(logits(twin, adv))
        expected = np_ce(logits(twin, x), y) + 2.0 * float((p * (np.log(p) - np.log(q))).sum(axis=1).mean())
    assert logs["loss"] == pytest.approx(expected, rel=1e-9)
    assert logs["adv_accuracy"] == pytest.approx(float((logits(twin, adv).argmax(axis=1) == y).mean()))
    assert logs["accuracy"] == pytest.approx(float((logits(twin, x).argmax(axis=1) == y).mean()))
    assert logs["eps"] == 0.1
    np.testing.assert_allclose(logs["output"].numpy(), logits(twin, x))
    np.testing.assert_array_equal(logs["target"].numpy(), y)
    changed = [not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(model.parameters(), twin.parameters())]
    assert all(changed)  # the optimiser stepped


def test_normalised_batches_give_the_step_of_a_model_that_normalises_itself():
    x, y = toy_images(n=16)
    mean, std = np.array([0.4]), np.array([0.25])
    inner = mlp(features=36)
    twin = copy.deepcopy(inner)

    class Normalised(nerve.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = twin

        def forward(self, t):
            return self.inner((t - nerve.tensor(mean.reshape(1, 1, 1, 1))) / nerve.tensor(std.reshape(1, 1, 1, 1)))

    a = AdversarialStep("pgd", eps=0.1, steps=3, normalization=(mean, std))
    nerve.manual_seed(3)
    logs_a = a(inner, ((x - mean[0]) / std[0], y), nerve.optim.SGD(inner.parameters(), lr=0.1))
    nerve.manual_seed(3)
    logs_b = AdversarialStep("pgd", eps=0.1, steps=3)(Normalised(), (x, y), nerve.optim.SGD(twin.parameters(),
                                                                                          lr=0.1))
    assert logs_a["loss"] == pytest.approx(logs_b["loss"], rel=1e-9)
    for p, q in zip(inner.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), atol=1e-12)


def test_ramp_grows_eps_linearly():
    step = AdversarialStep("fast", eps=0.3, ramp=3)
    seen = []
    x, y = toy_images(n=8)
    model = mlp(features=36)
    for _ in range(5):
        seen.append(step(model, (x, y), nerve.optim.SGD(model.parameters(), lr=0.01))["eps"])
    np.testing.assert_allclose(seen, [0.1, 0.2, 0.3, 0.3, 0.3])


def test_pgd_training_buys_robustness_on_a_small_task():
    x, y = toy_images(n=500, noise=0.05)
    x_train, y_train, x_test, y_test = x[:400], y[:400], x[400:], y[400:]
    clean_model = trained_mlp(x_train, y_train, epochs=20)
    nerve.manual_seed(0)
    robust_model = mlp(features=36, hidden=32)
    history = nerve.train.fit(robust_model, (x_train, y_train), optimizer=nerve.optim.Adam(robust_model.parameters(),
                              lr=1e-2), train_step=AdversarialStep("pgd", eps=0.15, steps=5), epochs=20,
                              batch_size=64, verbose=0, metrics=["accuracy"])
    assert {"loss", "accuracy", "adv_accuracy", "eps"} <= set(history.history)
    assert history.history["adv_accuracy"][-1] > history.history["adv_accuracy"][0]
    robust = []
    for model in (clean_model, robust_model):
        adv = PGD(model, eps=0.15, alpha=0.02, steps=20, seed=0)(x_test, y_test).numpy()
        robust.append(float((predict(model, adv) == y_test).mean()))
    assert (predict(robust_model, x_test) == y_test).mean() > 0.9
    assert robust[1] > robust[0] + 0.4, robust  # measured: 0.30 (clean training) and 0.88 (PGD training)


def test_margin_and_losses_against_numpy():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(6, 5)), rng.integers(0, 5, size=6)
    other = z.copy()
    other[np.arange(6), y] = -np.inf
    m = other.max(axis=1) - z[np.arange(6), y]
    zt, yt = nerve.tensor(z), nerve.tensor(y)
    np.testing.assert_allclose(margin(zt, yt).numpy(), m)
    np.testing.assert_allclose(attack_loss(zt, yt, "margin", kappa=0.5).numpy(), np.minimum(m, 0.5))
    np.testing.assert_allclose(attack_loss(zt, yt, "margin", targeted=True, kappa=0.5).numpy(), np.minimum(-m, 0.5))
    ce = -np.log(softmax(z)[np.arange(6), y])
    np.testing.assert_allclose(attack_loss(zt, yt, "ce").numpy(), ce)
    np.testing.assert_allclose(attack_loss(zt, yt, "ce", targeted=True).numpy(), -ce)
    z2 = rng.normal(size=(6, 5))
    p, q = softmax(z), softmax(z2)
    np.testing.assert_allclose(trades_kl(nerve.tensor(z2), zt).numpy(), (p * np.log(p / q)).sum(axis=1))
    with pytest.raises(ValueError, match="attack_loss: loss must be one of"):
        attack_loss(zt, yt, "hinge")
    g = nerve.gradcheck(lambda a: margin(a, yt), (nerve.tensor(z, requires_grad=True),))
    assert g
