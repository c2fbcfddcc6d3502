"""Embedding: lookup against a table walk, padding row, summed gradients, round trip, a task, bad indices."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn
from tests.helpers import T, n_params, round_trip

RNG = np.random.default_rng(1)
F64 = nerve.float64


def test_embedding_lookup_padding_and_round_trip():
    make = lambda: nn.Embedding(10, 4, padding_idx=0, dtype=F64)  # noqa: E731
    emb = make()
    assert n_params(emb) == 40 and np.all(emb.weight.numpy()[0] == 0)
    idx = np.array([[1, 0, 3], [3, 9, 0]])
    out = emb(nerve.tensor(idx))
    assert out.shape == (2, 3, 4)
    table = emb.weight.numpy()
    np.testing.assert_array_equal(out.numpy(), np.stack([[table[i] for i in row] for row in idx]))
    g = RNG.standard_normal(out.shape)
    out.backward(nerve.tensor(g))
    want = np.zeros((10, 4))
    for (i, j), k in np.ndenumerate(idx):
        if k != 0:
            want[k] += g[i, j]
    np.testing.assert_allclose(emb.weight.grad.numpy(), want, rtol=1e-12)
    round_trip(emb, make, nerve.tensor(idx))
    frozen = nn.Embedding.from_pretrained(nerve.tensor(table))
    assert not frozen.weight.requires_grad and np.array_equal(frozen(nerve.tensor(idx)).numpy(), out.numpy())


def test_embedding_gradients():
    idx = np.array([[2, 0], [2, 4]])  # repeated rows sum their gradients
    w = T(RNG.standard_normal((5, 3)), True)
    fn = lambda w: F.embedding(idx, w) * 1.5  # noqa: E731
    assert nerve.gradcheck(fn, [w]) and nerve.gradgradcheck(fn, [w])
    F.embedding(idx, w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1, 0, 0, 0, 1])  # the padding row gets nothing


def test_embedding_learns_a_lookup():
    nerve.manual_seed(3)
    model = nn.Sequential(nn.Embedding(8, 6), nn.Linear(6, 8))
    ids = nerve.arange(8)
    for _ in range(100):
        loss = F.cross_entropy(model(ids), ids)
        model.zero_grad()
        loss.backward()
        with nerve.no_grad():
            for p in model.parameters():
                p -= p.grad * 1.0
    assert model(ids).numpy().argmax(1).tolist() == list(range(8))


def test_embedding_bad_input():
    emb = nn.Embedding(1000, 64)
    with pytest.raises(IndexError, match=r"Embedding\(1000, 64\): index 1005 is out of range for 1000"):
        emb(nerve.tensor([3, 1005]))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        emb(nerve.tensor([-1]))
    with pytest.raises(TypeError, match="expected integer indices, got dtype float32"):
        emb(nerve.tensor([1.0]))
