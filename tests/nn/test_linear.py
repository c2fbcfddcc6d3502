"""Linear, Flatten and Unflatten: output shape, parameter count, state-dict round trip, a loop reference,
gradients, a task (XOR), bad input."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn
from tests.helpers import T, n_params, round_trip

RNG = np.random.default_rng(1)
F64 = nerve.float64


def test_linear_shape_params_reference_and_round_trip():
    make = lambda: nn.Linear(5, 3, dtype=F64)  # noqa: E731
    fc = make()
    assert n_params(fc) == 5 * 3 + 3 and n_params(nn.Linear(5, 3, bias=False)) == 15
    x = RNG.standard_normal((2, 4, 5))
    out = fc(T(x))
    assert out.shape == (2, 4, 3)
    w, b = fc.weight.numpy(), fc.bias.numpy()
    want = np.zeros((2, 4, 3))
    for i, j, o in np.ndindex(2, 4, 3):
        want[i, j, o] = sum(x[i, j, k] * w[o, k] for k in range(5)) + b[o]
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    assert nn.Linear(5, 3, bias=False, dtype=F64)(T(x)).shape == (2, 4, 3)
    assert fc(T(np.zeros((0, 5)))).shape == (0, 3)
    round_trip(fc, make, T(x))


def test_linear_gradients():
    args = [T(RNG.standard_normal(s), True) for s in [(3, 4), (2, 4), (2,)]]
    assert nerve.gradcheck(F.linear, args) and nerve.gradgradcheck(F.linear, args)
    batched = [T(RNG.standard_normal((2, 3, 4)), True), args[1]]
    assert nerve.gradcheck(F.linear, batched) and nerve.gradgradcheck(F.linear, batched)
    vector = [T(RNG.standard_normal(4), True), args[1], args[2]]
    assert nerve.gradcheck(F.linear, vector)


def test_linear_bad_input():
    fc = nn.Linear(784, 128)
    with pytest.raises(ValueError) as info:
        fc(nerve.zeros(32, 28, 28))
    assert str(info.value) == "Linear(784 -> 128): expected input (..., 784), got (32, 28, 28)"
    with pytest.raises(TypeError, match=r"\(784 -> 128\): input has dtype float64 but the weights are"):
        fc(nerve.zeros(2, 784, dtype=F64))
    with pytest.raises(ValueError, match=r"linear: input \(2, 3\) does not match weight \(4, 5\)"):
        F.linear(nerve.zeros(2, 3), nerve.zeros(4, 5))


def test_mlp_learns_xor_with_plain_gradient_descent():
    nerve.manual_seed(0)
    x = nerve.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = nerve.tensor([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(300):
        loss = loss_fn(model(x), y)
        model.zero_grad()
        loss.backward()
        with nerve.no_grad():
            for p in model.parameters():
                p -= p.grad * 0.5
    assert loss.item() < 0.05
    assert model(x).numpy().argmax(1).tolist() == [0, 1, 1, 0]


def test_flatten_unflatten():
    x = nerve.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60) and nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    back = nn.Unflatten(1, (3, 20))(nn.Flatten()(x))
    assert back.shape == (2, 3, 20)
    np.testing.assert_array_equal(back.numpy().reshape(x.shape), x.numpy())
    assert nn.Unflatten(-1, (-1, 4))(nerve.zeros(2, 12)).shape == (2, 3, 4)
    assert n_params(nn.Flatten()) == 0 and nn.Flatten().state_dict() == {}
    with pytest.raises(ValueError, match=r"dimension 1 of input \(2, 30\) has size 30, which does not split"):
        nn.Unflatten(1, (4, 8))(nerve.zeros(2, 30))
