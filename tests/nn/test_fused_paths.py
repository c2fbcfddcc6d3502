"""The fused primitives in nerve.ops.nn_ops have two backward paths (raw-array ``vjp`` and Tensor-op
``backward`` for create_graph); both must give the same gradients."""
import numpy as np
import pytest

import nerve
import nerve.functional as F

RNG = np.random.default_rng(3)


def T(a):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _probs(shape):
    return np.moveaxis(RNG.dirichlet(np.ones(shape[1]), size=shape[:1] + shape[2:]), -1, 1)


idx = RNG.integers(0, 4, (3, 2))
idx[0, 0] = -100
CASES = {
    "linear": (lambda x, w, b: F.linear(x, w, b), [(2, 3, 4), (5, 4), (5,)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, nerve.tensor(idx), weight=np.arange(1.0, 5.0),
                                                label_smoothing=0.1, reduction="none"), [(3, 4, 2)]),
    "cross_entropy_probs": (lambda x, t: F.cross_entropy(x, t, label_smoothing=0.2), [(3, 4, 2), "probs"]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 4, w, b), [(3, 4), (4,), (4,)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(5, 3, 2), (3,), (3,)]),
    "bce": (lambda p, t: F.binary_cross_entropy(p, t, weight=np.array([1.0, 2.0, 0.5])), ["unit", "unit"]),
    "bce_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=np.array([2.0, 1.0, 0.5]),
                                                                   reduction="sum"), [(4, 3), "unit"]),
    "embedding": (lambda w: F.embedding(np.array([[1, 0], [1, 3]]), w, padding_idx=3), [(4, 2)]),
}


def _make(spec, previous):
    if spec == "probs":
        return T(_probs(previous.shape))
    if spec == "unit":
        return T(RNG.uniform(0.1, 0.9, (4, 3)))
    return T(RNG.standard_normal(spec))


@pytest.mark.parametrize("name", sorted(CASES))
def test_vjp_and_backward_agree(name):
    fn, specs = CASES[name]
    inputs = []
    for spec in specs:
        inputs.append(_make(spec, inputs[-1] if inputs else None))
    out = fn(*inputs)
    v = nerve.tensor(RNG.standard_normal(out.shape))
    fast = nerve.grad(fn(*inputs), inputs, v)
    graph = nerve.grad(fn(*inputs), inputs, v, create_graph=True)
    for a, b in zip(fast, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
