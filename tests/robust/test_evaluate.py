"""robust_accuracy against accuracies computed by hand, its checks, its report and the PNGs."""
from __future__ import annotations

import numpy as np
import pytest

import nerve
from nerve.robust import (
    CW, FGM, FGSM, PGD, Attack, DeepFool, RobustnessReport, Square, Transfer, adversarial_grid, make_attack,
    plot_adversarial_examples, robust_accuracy,
)
from tests.robust.toy import mlp, toy_images, trained_mlp


@pytest.fixture(scope="module")
def trained():
    nerve.manual_seed(0)
    x, y = toy_images(n=400)
    return trained_mlp(x[:300], y[:300]), x[300:], y[300:]


def predict(model, x):
    with nerve.no_grad():
        return model(nerve.tensor(x)).numpy().argmax(axis=1)


def test_eps_zero_gives_the_clean_accuracy(trained):
    model, x, y = trained
    model = mlp(features=36, seed=1)  # an untrained model: clean accuracy well below 1
    clean = float((predict(model, x) == y).mean())
    report = robust_accuracy(model, (x, y), ["fgsm", "pgd", "square"], eps=[0.0, 0.1], batch_size=30)
    assert report.clean == pytest.approx(clean)
    for row in report.accuracy.values():
        assert row[0] == pytest.approx(clean)


def test_accuracy_matches_a_hand_count_and_never_rises_with_eps(trained):
    model, x, y = trained
    eps = [0.0, 0.05, 0.1, 0.15, 0.2]
    report = robust_accuracy(model, (x, y), [FGSM(model, eps=0.1), PGD(model, eps=0.1, alpha=0.02, steps=10, seed=3)],
                             eps=eps, batch_size=1000)
    clean = predict(model, x) == y
    still = clean.copy()
    for i, e in enumerate(eps):  # FGSM is deterministic: count by hand with the carry-over rule
        still &= predict(model, FGSM(model, eps=e)(x, y).numpy()) == y
        assert report.accuracy["FGSM(eps=0.2)"][i] == pytest.approx(still.mean())
    for row in [*report.accuracy.values(), *report.robust.values()]:
        assert all(a >= b for a, b in zip(row, row[1:]))
    worst = report.robust["Linf"]
    assert all(w <= min(r[i] for r in report.accuracy.values()) + 1e-12 for i, w in enumerate(worst))
    assert worst[-1] < 0.2 and report.n == 100
    assert "worst case (Linf)" in report.table() and "clean accuracy" in str(report)


def test_worst_case_is_the_per_sample_and_of_the_attacks(trained):
    model, x, y = trained
    a, b = FGSM(model, eps=0.12), PGD(model, eps=0.12, alpha=0.03, steps=5, random_start=False)
    report = robust_accuracy(model, (x, y), [a, b], eps=[0.12])
    ok_a = predict(model, a(x, y).numpy()) == y
    ok_b = predict(model, b(x, y).numpy()) == y
    clean = predict(model, x) == y
    assert report.robust["Linf"][0] == pytest.approx((clean & ok_a & ok_b).mean())
    assert report.accuracy[repr(b)][0] == pytest.approx((clean & ok_b).mean())


def test_minimum_norm_attacks_count_samples_whose_perturbation_exceeds_eps(trained):
    model, x, y = trained
    eps = [0.0, 0.3, 0.6, 1.0]
    report = robust_accuracy(model, (x, y), [DeepFool(model), FGM(model, eps=0.6)], eps=eps)
    adv = DeepFool(model)(x, y).numpy()
    norm = np.linalg.norm((adv - x).reshape(len(x), -1), axis=1)
    fooled = predict(model, adv) != y
    clean = predict(model, x) == y
    expected = [(clean & (~fooled | (norm > e))).mean() for e in eps]
    np.testing.assert_allclose(report.accuracy[repr(DeepFool(model))], expected)
    assert report.norms[repr(DeepFool(model))] == pytest.approx(np.median(norm[fooled & clean]))
    assert set(report.robust) == {"L2"}


def test_each_threat_model_gets_its_own_worst_case(trained):
    model, x, y = trained
    report = robust_accuracy(model, (x, y), ["fgsm", "fgm", ("pgd", {"steps": 5})], eps=[0.1])
    assert set(report.robust) == {"Linf", "L2"}


class Cheat(Attack):
    """A buggy attack: twice the budget."""

    def __init__(self, model, eps=0.1):
        super().__init__("Cheat", model, eps)

    def forward(self, x, y, logits):
        return np.clip(x + 2 * self.eps, 0, 1)


def test_a_perturbation_outside_its_ball_is_caught(trained):
    model, x, y = trained
    with pytest.raises(RuntimeError, match=r"robust_accuracy: Cheat\(eps=0.1\) left the Linf ball: \|delta\| = 0.2"):
        robust_accuracy(model, (x, y), [Cheat(model)], eps=[0.1])


def test_transfer_attack_in_a_report(trained):
    model, x, y = trained
    surrogate = trained_mlp(x, y, epochs=10, seed=4)
    report = robust_accuracy(model, (x, y), [Transfer(model, PGD(surrogate, eps=0.15, alpha=0.03, steps=10)),
                                             PGD(model, eps=0.15, alpha=0.03, steps=10)], eps=[0.0, 0.15])
    transfer, white_box = report.accuracy.values()
    assert white_box[1] <= transfer[1] < transfer[0]  # a transfer attack works, less than the white-box one


def test_make_attack_and_data_errors():
    model = mlp()
    pgd = make_attack("PGD", model, 0.3)
    assert (pgd.steps, pgd.alpha) == (20, pytest.approx(2.5 * 0.3 / 20))
    assert isinstance(make_attack("cw", model, 0.3), CW) and isinstance(make_attack("square", model, 0.1), Square)
    with pytest.raises(ValueError, match="make_attack: unknown attack 'boom'"):
        make_attack("boom", model, 0.1)
    x, y = toy_images(n=10)
    with pytest.raises(ValueError, match=r"robust_accuracy: eps must be >= 0, got \[-0.1"):
        robust_accuracy(model, (x, y), ["fgsm"], eps=[-0.1])
    with pytest.raises(ValueError, match="robust_accuracy: expected \\(X, y\\) of one non-zero length, got 10 and 9"):
        robust_accuracy(model, (x, y[:9]), ["fgsm"], eps=[0.1])
    with pytest.raises(TypeError, match="robust_accuracy: an attack is an Attack, a name or"):
        robust_accuracy(model, (x, y), [3], eps=[0.1])


def test_pictures(trained, tmp_path):
    pytest.importorskip("matplotlib")
    model, x, y = trained
    atk = PGD(model, eps=0.2, alpha=0.05, steps=5, random_start=False)
    grid = adversarial_grid(atk, x[:6], y[:6])
    assert grid["delta"].shape == (6, 1, 6, 6) and 0 <= grid["delta"].min() and grid["delta"].max() <= 1
    assert grid["delta"].max() == pytest.approx(1.0) or grid["delta"].min() == pytest.approx(0.0)
    np.testing.assert_array_equal(grid["adv_pred"], predict(model, atk(x[:6], y[:6]).numpy()))
    plot_adversarial_examples(atk, x[:6], y[:6], tmp_path / "grid.png")
    report = robust_accuracy(model, (x, y), ["fgsm"], eps=[0.0, 0.1])
    assert isinstance(report, RobustnessReport)
    report.plot(tmp_path / "curve.png")
    assert (tmp_path / "grid.png").stat().st_size > 1000 and (tmp_path / "curve.png").stat().st_size > 1000
