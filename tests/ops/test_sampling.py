"""multinomial, bernoulli, normal and the in-place fills (nerve/ops/sampling.py): frequencies against the
probabilities they sample (tolerances of about 4 standard errors), seeding through ``generator=``, errors."""
import numpy as np
import pytest

import nerve

N = 20000


def _gen(seed=0):
    return nerve.Generator().manual_seed(seed)


def test_multinomial_with_replacement_matches_the_probabilities():
    w = nerve.tensor([[1.0, 0.0, 3.0, 4.0], [5.0, 5.0, 0.0, 0.0]])
    draws = nerve.multinomial(w, N, replacement=True, generator=_gen()).numpy()
    assert draws.shape == (2, N) and draws.dtype == np.int64
    for row, weights in zip(draws, w.numpy()):
        p = weights / weights.sum()
        freq = np.bincount(row, minlength=4) / N
        np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(0.25 / N))
        assert freq[p == 0].sum() == 0  # zero weights are never drawn


def test_multinomial_without_replacement_is_sequential_drawing():
    p = np.array([0.5, 0.3, 0.2])
    pairs = np.stack([nerve.tensor(p).multinomial(2, generator=_gen(s)).numpy() for s in range(4000)])
    assert (pairs[:, 0] != pairs[:, 1]).all()
    # P(first = i, second = j) = p_i p_j / (1 - p_i)
    want = {(i, j): p[i] * p[j] / (1 - p[i]) for i in range(3) for j in range(3) if i != j}
    for (i, j), prob in want.items():
        freq = np.mean((pairs[:, 0] == i) & (pairs[:, 1] == j))
        assert abs(freq - prob) < 4 * np.sqrt(prob * (1 - prob) / 4000), (i, j, freq, prob)
    full = nerve.multinomial(nerve.tensor([1.0, 2.0, 0.0, 1.0]), 3, generator=_gen()).numpy()
    assert sorted(full.tolist()) == [0, 1, 3]


def test_multinomial_generator_reproduces_and_shared_generator_is_seeded():
    w = nerve.tensor([0.2, 0.3, 0.5])
    a = nerve.multinomial(w, 10, True, generator=_gen(7)).numpy()
    b = nerve.multinomial(w, 10, True, generator=_gen(7)).numpy()
    np.testing.assert_array_equal(a, b)
    nerve.manual_seed(3)
    c = w.multinomial(10, True).numpy()
    nerve.manual_seed(3)
    np.testing.assert_array_equal(c, w.multinomial(10, True).numpy())


@pytest.mark.parametrize("call, match", [
    (lambda: nerve.multinomial(nerve.tensor([1.0, -1.0]), 1), "finite and non-negative"),
    (lambda: nerve.multinomial(nerve.tensor([0.0, 0.0]), 1), "sums to 0"),
    (lambda: nerve.multinomial(nerve.tensor([1.0, 0.0, 1.0]), 3), "cannot draw 3 samples without replacement .* 2"),
    (lambda: nerve.multinomial(nerve.ones(2, 2, 2), 1), r"1-D or 2-D .* \(2, 2, 2\)"),
    (lambda: nerve.multinomial(nerve.ones(3), 0), "num_samples must be positive"),
    (lambda: nerve.bernoulli(nerve.tensor([0.5, 1.5])), r"probabilities must lie in \[0, 1\]"),
    (lambda: nerve.normal(nerve.zeros(2), nerve.tensor([1.0, -1.0])), "std must be non-negative"),
])
def test_sampling_errors(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()


def test_bernoulli_frequencies_and_dtype():
    p = nerve.tensor([0.1, 0.5, 0.9]).expand(N, 3)
    draws = nerve.bernoulli(p, generator=_gen())
    assert draws.dtype == np.float32 and not draws.requires_grad
    np.testing.assert_allclose(draws.numpy().mean(0), [0.1, 0.5, 0.9], atol=4 * np.sqrt(0.25 / N))
    fixed = nerve.zeros(N).bernoulli(0.25, generator=_gen(1))
    assert abs(fixed.numpy().mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / N)
    assert set(np.unique(fixed.numpy())) <= {0.0, 1.0}


def test_normal_tensor_forms():
    mean = nerve.tensor([[-2.0], [3.0]])
    std = nerve.tensor([0.5, 2.0, 1.0])
    x = nerve.normal(mean.expand(2, 3).repeat(1, 1), std, generator=_gen())
    assert x.shape == (2, 3) and x.dtype == np.float32
    many = np.stack([nerve.normal(mean, std, generator=_gen(s)).numpy() for s in range(3000)])
    np.testing.assert_allclose(many.mean(0), np.broadcast_to([[-2.0], [3.0]], (2, 3)),
                               atol=4 * 2.0 / np.sqrt(3000))
    np.testing.assert_allclose(many.std(0), np.broadcast_to([0.5, 2.0, 1.0], (2, 3)), rtol=0.1)
    assert nerve.normal(1.0, std).shape == (3,)
    assert nerve.normal(mean, 2.0).shape == (2, 1)
    y = nerve.normal(0.0, 1.0, (4, 5), generator=_gen())
    assert y.shape == (4, 5) and y.dtype == nerve.get_default_dtype()
    assert nerve.normal(nerve.zeros(2, dtype=nerve.float64)).dtype == np.float64
    z = nerve.normal(0.0, 1.0, (2, 2), device="cpu", requires_grad=True, dtype=nerve.float64)
    assert z.requires_grad and z.is_leaf and z.dtype == np.float64 and z.device == "cpu"


def test_inplace_fills_and_their_graph_guard():
    x = nerve.empty(N)
    x.normal_(2.0, 0.5, generator=_gen())
    assert abs(x.numpy().mean() - 2.0) < 0.05 and abs(x.numpy().std() - 0.5) < 0.05
    x.uniform_(-1.0, 3.0, generator=_gen())
    assert x.numpy().min() >= -1.0 and x.numpy().max() < 3.0 and abs(x.numpy().mean() - 1.0) < 0.05
    w = nerve.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="normal_: in-place change of a leaf tensor that requires grad"):
        w.normal_()
    with nerve.no_grad():
        w.uniform_(0.0, 1.0)
    assert (w.numpy() > 0).any()
