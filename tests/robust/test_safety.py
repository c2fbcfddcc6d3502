"""Bad input gets a clear error naming the attack; an attack leaves the caller's tensors and the model as they were."""
from __future__ import annotations

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.robust import (
    CW, FFGSM, FGM, FGSM, MIFGSM, PGD, PGDL2, AdversarialStep, DeepFool, MultiAttack, Square, Transfer,
)
from tests.robust.toy import mlp, toy_images

MAKERS = {
    "FGSM": lambda m: FGSM(m, eps=0.1), "FFGSM": lambda m: FFGSM(m, eps=0.1, alpha=0.12),
    "FGM": lambda m: FGM(m, eps=0.5), "PGD": lambda m: PGD(m, eps=0.1, alpha=0.03, steps=3, restarts=2),
    "PGDL2": lambda m: PGDL2(m, eps=0.5, alpha=0.2, steps=3), "MIFGSM": lambda m: MIFGSM(m, eps=0.1, steps=3),
    "CW": lambda m: CW(m, steps=5), "DeepFool": lambda m: DeepFool(m, steps=3),
    "Square": lambda m: Square(m, eps=0.1, n_queries=5),
    "Transfer": lambda m: Transfer(m, PGD(mlp(features=36, seed=9), eps=0.1, steps=2)),
    "MultiAttack": lambda m: MultiAttack([FGSM(m, eps=0.1), PGD(m, eps=0.1, steps=2)]),
}


class WithDropout(nn.Module):
    """An MLP with dropout (so the mode matters) and a frozen first layer."""

    def __init__(self):
        super().__init__()
        self.body = mlp(features=36)
        self.drop = nn.Dropout(0.5)
        self.body[1].weight.requires_grad = False

    def forward(self, x):
        return self.drop(self.body(x))


@pytest.mark.parametrize("name", sorted(MAKERS))
@pytest.mark.parametrize("training", [True, False])
def test_attack_leaves_inputs_and_model_untouched(name, training):
    model = WithDropout()
    model.train(training)
    x, y = toy_images(n=8)
    xt, yt = nerve.tensor(x, requires_grad=True), nerve.tensor(y)
    params = list(model.parameters())
    params[1].grad = nerve.tensor(np.full(params[1].shape, 7.0))  # a gradient the caller is accumulating
    before = [p.detach().numpy().copy() for p in params]
    flags = [p.requires_grad for p in params]
    grads = [None if p.grad is None else p.grad.numpy().copy() for p in params]
    out = MAKERS[name](model)(xt, yt)
    np.testing.assert_array_equal(xt.numpy(), x)
    assert xt.requires_grad and xt.grad is None and xt.grad_fn is None
    np.testing.assert_array_equal(yt.numpy(), y)
    for p, b, f, g in zip(params, before, flags, grads):
        np.testing.assert_array_equal(p.detach().numpy(), b)
        assert p.requires_grad == f
        assert (p.grad is None) if g is None else np.array_equal(p.grad.numpy(), g)
    assert all(m.training == training for m in model.modules())
    assert isinstance(out, nerve.Tensor) and out.shape == xt.shape and not out.requires_grad


def test_attack_runs_in_eval_mode_and_inside_no_grad():
    model = WithDropout().train()
    x, y = toy_images(n=8)
    with nerve.no_grad():
        a = PGD(model, eps=0.1, alpha=0.03, steps=3, random_start=False)(x, y).numpy()
    b = PGD(model, eps=0.1, alpha=0.03, steps=3, random_start=False)(x, y).numpy()
    np.testing.assert_array_equal(a, b)  # dropout off: deterministic
    assert model.training


def test_negative_eps_is_an_error_naming_the_attack():
    for cls in (FGSM, FGM, PGD, PGDL2, MIFGSM, FFGSM, Square):
        with pytest.raises(ValueError, match=rf"^{cls.__name__}: eps must be a number >= 0, got -0.1"):
            cls(mlp(), eps=-0.1)
    with pytest.raises(ValueError, match="PGD: eps must be"):
        PGD(mlp(), eps=0.1).at_eps(-1.0)
    with pytest.raises(ValueError, match="AdversarialStep: eps must be >= 0"):
        AdversarialStep("pgd", eps=-0.3)


def test_step_larger_than_eps_warns():
    with pytest.warns(UserWarning, match=r"PGD: the step size alpha=0.5 is larger than eps=0.3"):
        PGD(mlp(), eps=0.3, alpha=0.5)
    with pytest.warns(UserWarning, match=r"MIFGSM: the step size alpha=0.2 is larger than eps=0.1"):
        MIFGSM(mlp(), eps=0.1, alpha=0.2)
    with pytest.warns(UserWarning, match="PGDL2: the step size"):
        PGDL2(mlp(), eps=0.1, alpha=0.2)


def test_inputs_outside_the_bounds_are_an_error():
    x, y = toy_images(n=4)
    with pytest.raises(ValueError, match=r"PGD: inputs must lie in bounds \[0, 1\], got values in \[-0.5, "):
        PGD(mlp(features=36), eps=0.1)(x - 0.5, y)
    with pytest.raises(ValueError, match=r"FGSM: inputs must lie in bounds \[-1, 1\]"):
        FGSM(mlp(features=36), eps=0.1, bounds=(-1, 1))(x * 3, y)
    FGSM(mlp(features=36), eps=0.1, bounds=None)(x * 3, y)  # unbounded: fine
    with pytest.raises(ValueError, match=r"CW: bounds must be \(low, high\) with low < high"):
        CW(mlp(), bounds=(1, 0))
    with pytest.raises(ValueError, match="FGSM: the inputs hold NaN"):
        FGSM(mlp(features=36), eps=0.1)(np.full((2, 1, 6, 6), np.nan), [0, 1])


def test_labels_out_of_range_or_badly_shaped_are_errors():
    x, y = toy_images(n=4)
    model = mlp(features=36)
    with pytest.raises(ValueError, match=r"PGD: labels must be in \[0, 4\), got values in \[0, 7\]"):
        PGD(model, eps=0.1)(x, np.array([0, 1, 2, 7]))
    with pytest.raises(ValueError, match=r"FGSM: labels must be in \[0, 4\), got values in \[-1, "):
        FGSM(model, eps=0.1)(x, np.array([-1, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"FGSM: expected integer labels of shape \(4,\), got float64 \(4,\)"):
        FGSM(model, eps=0.1)(x, y.astype(float))
    with pytest.raises(ValueError, match=r"FGSM: expected integer labels of shape \(4,\), got int64 \(3,\)"):
        FGSM(model, eps=0.1)(x, y[:3])
    with pytest.raises(ValueError, match=r"FGSM: expected a batch of inputs"):
        FGSM(model, eps=0.1)(x[:0], y[:0])


def test_a_model_returning_probabilities_warns():
    x, y = toy_images(n=4)
    probs = nn.Sequential(mlp(features=36), nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match="FGSM: the model's outputs are non-negative and each row sums to 1"):
        FGSM(probs, eps=0.1)(x, y)


def test_model_output_of_the_wrong_shape_is_an_error():
    x, y = toy_images(n=4)
    with pytest.raises(ValueError, match=r"PGD: the model must return logits \(N, classes\) for N = 4 inputs, got "
                                         r"\(4,\)"):
        PGD(lambda t: t.reshape(4, -1).sum(dim=1), eps=0.1)(x, y)


def test_option_errors_name_the_attack():
    m = mlp()
    with pytest.raises(ValueError, match="PGD: steps must be an int >= 0"):
        PGD(m, steps=-1)
    with pytest.raises(ValueError, match="PGD: restarts must be an int >= 1"):
        PGD(m, restarts=0)
    with pytest.raises(ValueError, match=r"FGSM: loss must be one of \('ce', 'margin'\), got 'mse'"):
        FGSM(m, loss="mse")
    with pytest.raises(ValueError, match="CW: needs c > 0"):
        CW(m, c=0)
    with pytest.raises(ValueError, match="DeepFool: needs an int steps >= 1"):
        DeepFool(m, steps=0)
    with pytest.raises(ValueError, match="Square: n_queries and n_restarts must be ints >= 1"):
        Square(m, n_queries=0)
    with pytest.raises(ValueError, match="PGD: kth_min must be >= 1"):
        PGD(m).set_mode_targeted_least_likely(0)
    with pytest.raises(ValueError, match="PGD: set_normalization_used needs mean and std"):
        PGD(m).set_normalization_used([0.5], [0.0])
    with pytest.raises(TypeError, match="Transfer: source must be an Attack"):
        Transfer(m, m)
    with pytest.raises(ValueError, match="MultiAttack: the attacks must share one model and one norm"):
        MultiAttack([FGSM(m), FGM(m)])
    with pytest.raises(ValueError, match="AdversarialStep: method must be one of"):
        AdversarialStep("madry")
    x, y = toy_images(n=4)
    with pytest.raises(ValueError, match="DeepFool: untargeted only"):
        DeepFool(mlp(features=36)).set_mode_targeted_by_label()(x, y)
    with pytest.raises(ValueError, match=r"Square: expects images \(N, C, H, W\), sequences"):
        Square(mlp(features=36), eps=0.1)(x.reshape(4, 1, 1, 1, 36), y)
