"""The remaining PyTorch functional names (pdist, lp_pool, multilabel_margin_loss,
triplet_margin_with_distance_loss, embedding_bag, in-place activations, *_with_indices, upsample) and their
modules, against NumPy loops of their definitions; gradchecks in float64."""
import itertools

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn

RNG = np.random.default_rng(0)


def t(a, grad=False):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def test_pdist():
    x = RNG.standard_normal((5, 3))
    for p in (1.0, 2.0, 3.0):
        ref = [np.sum(np.abs(x[i] - x[j]) ** p) ** (1 / p) for i in range(5) for j in range(i + 1, 5)]
        np.testing.assert_allclose(F.pdist(t(x), p).numpy(), ref)
    assert nerve.gradcheck(lambda a: F.pdist(a, 3.0), [t(x, True)])


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_lp_pool(p):
    x = np.abs(RNG.standard_normal((1, 2, 5, 6))) + 0.1
    out = nn.LPPool2d(p, (2, 3), stride=(2, 2))(t(x)).numpy()
    ref = np.zeros((1, 2, 2, 2))
    for c, i, j in itertools.product(range(2), range(2), range(2)):
        ref[0, c, i, j] = np.sum(x[0, c, 2 * i:2 * i + 2, 2 * j:2 * j + 3] ** p) ** (1 / p)
    np.testing.assert_allclose(out, ref)
    assert nerve.gradcheck(lambda a: F.lp_pool1d(a, p, 2), [t(x[:, :, 0], True)])
    assert nn.LPPool3d(p, 2)(t(np.repeat(x[:, :, None], 2, axis=2))).shape == (1, 2, 1, 2, 3)


def test_multilabel_margin_loss():
    x = RNG.standard_normal((3, 5))
    target = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [4, 4, -1, 0, 0]])
    ref = []
    for row in range(3):
        labels = list(itertools.takewhile(lambda v: v >= 0, target[row]))
        others = [i for i in range(5) if i not in labels]
        ref.append(sum(max(0, 1 - (x[row, j] - x[row, i])) for j in labels for i in others) / 5)
    np.testing.assert_allclose(F.multilabel_margin_loss(t(x), nerve.tensor(target), reduction="none").numpy(), ref)
    assert np.isclose(nn.MultiLabelMarginLoss()(t(x), nerve.tensor(target)).item(), np.mean(ref))
    assert nerve.gradcheck(lambda a: F.multilabel_margin_loss(a, nerve.tensor(target)), [t(x, True)])
    with pytest.raises(IndexError, match="target class 7 out of range for 5 classes"):
        F.multilabel_margin_loss(t(x), nerve.tensor(np.full((3, 5), 7)))


def test_triplet_margin_with_distance_loss():
    a, p, n = (RNG.standard_normal((4, 3)) for _ in range(3))

    def cosine_distance(u, v):
        return 1 - F.cosine_similarity(u, v)

    def cos(u, v):
        return 1 - (u * v).sum(1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
    ref = np.maximum(0.5 + cos(a, p) - np.minimum(cos(a, n), cos(p, n)), 0)
    loss = nn.TripletMarginWithDistanceLoss(distance_function=cosine_distance, margin=0.5, swap=True,
                                            reduction="none")
    np.testing.assert_allclose(loss(t(a), t(p), t(n)).numpy(), ref)
    euclid = np.maximum(1 + np.linalg.norm(a - p + 1e-6, axis=1) - np.linalg.norm(a - n + 1e-6, axis=1), 0).mean()
    assert np.isclose(F.triplet_margin_with_distance_loss(t(a), t(p), t(n)).item(), euclid)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(mode):
    w = RNG.standard_normal((10, 3))
    flat = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = [0, 4, 4]  # bags [1 2 4 5], [], [4 3 2 9]
    reduce = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]

    def bags_ref(bags, padding=None):
        out = []
        for bag in bags:
            rows = [w[i] for i in bag if i != padding]
            out.append(reduce(rows, axis=0) if rows else np.zeros(3))
        return np.array(out)
    bags = [flat[0:4], flat[4:4], flat[4:8]]
    np.testing.assert_allclose(F.embedding_bag(nerve.tensor(flat), t(w), nerve.tensor(offsets), mode=mode).numpy(),
                               bags_ref(bags))
    np.testing.assert_allclose(F.embedding_bag(nerve.tensor(flat), t(w), offsets, mode=mode, padding_idx=4).numpy(),
                               bags_ref(bags, padding=4))
    np.testing.assert_allclose(F.embedding_bag(nerve.tensor(flat.reshape(2, 4)), t(w), mode=mode).numpy(),
                               bags_ref([flat[:4], flat[4:]]))
    np.testing.assert_allclose(F.embedding_bag(nerve.tensor(flat), t(w), [0, 3, 8], mode=mode,
                                               include_last_offset=True).numpy(), bags_ref([flat[:3], flat[3:]]))
    wt = t(w, True)
    assert nerve.gradcheck(lambda a: F.embedding_bag(nerve.tensor(flat), a, offsets, mode=mode), [wt])
    module = nn.EmbeddingBag(10, 3, mode=mode, _weight=t(w))
    np.testing.assert_allclose(module(nerve.tensor(flat), nerve.tensor(offsets)).numpy(), bags_ref(bags))


def test_embedding_bag_weights_and_errors():
    w = RNG.standard_normal((6, 2))
    idx, weights = np.array([0, 5, 3, 3]), RNG.standard_normal(4)
    out = F.embedding_bag(nerve.tensor(idx), t(w), [0, 2], mode="sum", per_sample_weights=t(weights)).numpy()
    np.testing.assert_allclose(out, [weights[0] * w[0] + weights[1] * w[5], weights[2] * w[3] + weights[3] * w[3]])
    with pytest.raises(ValueError, match="per_sample_weights needs mode='sum'"):
        F.embedding_bag(nerve.tensor(idx), t(w), [0, 2], per_sample_weights=t(weights))
    with pytest.raises(ValueError, match="EmbeddingBag: max_norm is not supported"):
        nn.EmbeddingBag(6, 2, max_norm=1.0)


def test_in_place_aliases_and_deprecated_names():
    x = nerve.tensor(RNG.standard_normal(6))
    ref = np.maximum(x.numpy(), 0)
    assert F.relu_(x) is x and np.array_equal(x.numpy(), ref)
    y = nerve.tensor([-1.0, 2.0])
    F.leaky_relu_(y, 0.5)
    assert np.allclose(y.numpy(), [-0.5, 2.0])
    with pytest.raises(RuntimeError, match="elu_: in-place change of a leaf tensor that requires grad"):
        F.elu_(nerve.tensor([1.0], requires_grad=True))
    img = t(RNG.standard_normal((1, 1, 4, 4)))
    out, idx = F.max_pool2d_with_indices(img, 2)
    ref_out, ref_idx = F.max_pool2d(img, 2, return_indices=True)
    assert np.array_equal(out.numpy(), ref_out.numpy()) and np.array_equal(idx.numpy(), ref_idx.numpy())
    assert F.adaptive_max_pool2d_with_indices(img, 1)[1].shape == (1, 1, 1, 1)
    np.testing.assert_array_equal(F.upsample_nearest(img, scale_factor=2).numpy(),
                                  F.interpolate(img, scale_factor=2).numpy())
    np.testing.assert_array_equal(F.upsample_bilinear(img, size=(6, 6)).numpy(),
                                  F.interpolate(img, size=(6, 6), mode="bilinear", align_corners=True).numpy())
    assert nn.NLLLoss2d is nn.NLLLoss


def test_conv_tbc_is_a_time_major_convolution():
    x, w, b = RNG.standard_normal((6, 2, 4)), RNG.standard_normal((3, 4, 5)), RNG.standard_normal(5)
    out = F.conv_tbc(t(x), t(w), t(b), 1).numpy()
    padded = np.pad(x, ((1, 1), (0, 0), (0, 0)))
    ref = np.stack([sum(padded[i + j] @ w[j] for j in range(3)) + b for i in range(6)])
    np.testing.assert_allclose(out, ref, atol=1e-12)
    with pytest.raises(nerve.autograd.ShapeError, match="conv_tbc: expected input"):
        F.conv_tbc(t(x), t(w[:, :3]), t(b))
