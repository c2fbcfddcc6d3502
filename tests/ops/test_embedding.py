"""embedding: forward against NumPy indexing, gradcheck and gradgradcheck (through the reference) in float64,
kernel against reference, the padding row, bad indices."""
import numpy as np
import pytest

import nerve
from tests.helpers import T
from tests.ops.table import Case, table_tests


def _table_and_indices(n, dim, shape):
    def make(rng):
        idx = rng.integers(0, n, shape)
        idx.reshape(-1)[:2] = [1, 1]  # a repeated row sums its gradients
        return [rng.standard_normal((n, dim)), idx]
    return make


def _padded(pad, keep):
    def fn(w, i):
        return nerve.embedding(i, w * nerve.tensor(keep, device=w.device), padding_idx=pad)
    return fn


def _cases():
    for shape in ((2, 3), (7,), (2, 2, 3)):
        yield Case("embedding", lambda w, i: nerve.embedding(i, w), lambda w, i: w[i], [(5, 3), shape],
                   make=_table_and_indices(5, 3, shape), second=True)
        for pad in (1, 3, -1):
            # NOTE: the padding row gets no gradient although the output reads it; zeroing it on the way in makes
            # that the true derivative, so gradcheck holds with padding indices present
            keep = np.ones((5, 1))
            keep[pad] = 0.0
            yield Case(f"embedding_pad{pad}", _padded(pad, keep), lambda w, i, k=keep: (w * k)[i], [(5, 3), shape],
                       make=_table_and_indices(5, 3, shape), second=True)
    yield Case("embedding_empty", lambda w, i: nerve.embedding(i, w), lambda w, i: w[i], [(5, 3), (0,)],
               make=lambda rng: [rng.standard_normal((5, 3)), np.zeros(0, dtype=np.int64)])


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


@pytest.mark.parametrize("create_graph", [False, True])
def test_embedding_padding_row_gets_no_gradient(create_graph):
    w = T(np.random.default_rng(0).standard_normal((4, 2)), requires_grad=True)
    idx = np.array([[1, 0], [1, 3]])
    out = nerve.embedding(idx, w, padding_idx=3)
    np.testing.assert_array_equal(out.numpy(), w.numpy()[idx])
    gw, = nerve.grad(out, [w], nerve.ones(2, 2, 2, dtype=nerve.float64), create_graph=create_graph)
    np.testing.assert_array_equal(gw.numpy(), [[1, 1], [2, 2], [0, 0], [0, 0]])


def test_embedding_bad_indices():
    w = T(np.zeros((4, 2)))
    with pytest.raises(IndexError, match=r"embedding: index 4 is out of range for 4 embeddings \(expected 0..3\)"):
        nerve.embedding(nerve.tensor([0, 4]), w)
    with pytest.raises(IndexError, match="embedding: index -1 is out of range"):
        nerve.embedding(np.array([-1, 0]), w)
    with pytest.raises(TypeError, match="embedding: expected integer indices, got dtype float64"):
        nerve.embedding(T([0.0, 1.0]), w)
