"""cross_entropy, binary_cross_entropy and binary_cross_entropy_with_logits: forward against NumPy loops of
PyTorch's definitions, gradcheck and gradgradcheck (through the references) in float64, kernel against
reference, PyTorch's recorded values, edge cases and bad input."""
import numpy as np
import pytest

import nerve
from tests.helpers import T, np_reduce
from tests.ops.table import Case, table_tests

RNG = np.random.default_rng(0)
REDUCTIONS = ("mean", "sum", "none")


# --- references: loops over positions, PyTorch's definitions ------------------------------------------
def ref_cross_entropy(x, y, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    n_classes = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, n_classes)
    w = np.ones(n_classes) if weight is None else weight
    losses, denom = [], 0.0
    for row, label in zip(rows, y.reshape(-1)):
        if label == ignore_index:
            losses.append(0.0)
            continue
        m = row.max()
        logp = row - m - np.log(np.sum(np.exp(row - m)))
        nll = -w[label] * logp[label]
        smooth = -np.sum(w * logp)
        losses.append((1 - smoothing) * nll + smoothing / n_classes * smooth)
        denom += w[label]
    return np_reduce(np.array(losses).reshape(y.shape), reduction, denom)


def ref_cross_entropy_probs(x, t, weight=None, reduction="mean", smoothing=0.0):
    n_classes = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, n_classes)
    trows = np.moveaxis(t, 1, -1).reshape(-1, n_classes) * (1 - smoothing) + smoothing / n_classes
    w = np.ones(n_classes) if weight is None else weight
    losses = []
    for row, target in zip(rows, trows):
        logp = row - np.log(np.sum(np.exp(row)))
        losses.append(-np.sum(w * target * logp))
    return np_reduce(np.array(losses).reshape(x.shape[:1] + x.shape[2:]), reduction, rows.shape[0])


def ref_bce(p, t, weight=None, reduction="mean"):
    with np.errstate(divide="ignore"):
        loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))
    return np_reduce(loss if weight is None else loss * weight, reduction)


def ref_bce_logits(x, t, weight=None, pos_weight=None, reduction="mean"):
    s = 1 / (1 + np.exp(-x))
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * t * np.log(s) + (1 - t) * np.log(1 - s))
    return np_reduce(loss if weight is None else loss * weight, reduction)


# --- the table ---------------------------------------------------------------------------------------------
SHAPES = [((6, 4), (6,)), ((3, 4, 2), (3, 2)), ((2, 3, 2, 2), (2, 2, 2))]


def _indices(shape, tshape, ignore_index=-100):
    def make(rng):
        y = rng.integers(0, shape[1], tshape)
        y.reshape(-1)[0] = ignore_index
        return [rng.standard_normal(shape) * 3, y]
    return make


def _probs(shape, tshape):
    def make(rng):
        return [rng.standard_normal(shape), np.moveaxis(rng.dirichlet(np.ones(shape[1]), size=tshape), -1, 1)]
    return make


def _cross_entropy_cases():
    for shape, tshape in SHAPES:
        w = RNG.uniform(0.5, 2.0, shape[1])
        for reduction in REDUCTIONS:
            for weight, smoothing in ((None, 0.0), (w, 0.0), (None, 0.3), (w, 0.3)):
                tag = f"cross_entropy[{reduction},{'w' if weight is not None else '-'},{smoothing}]"
                yield Case(tag, lambda x, y, weight=weight, r=reduction, s=smoothing: nerve.cross_entropy(
                    x, y, weight=weight, reduction=r, label_smoothing=s),
                    lambda x, y, weight=weight, r=reduction, s=smoothing: ref_cross_entropy(
                    x, y, weight, -100, r, s), [shape, tshape], make=_indices(shape, tshape), second=True,
                    rtol=1e-12, atol=1e-12)
            for weight, smoothing in ((None, 0.0), (w, 0.2)):
                tag = f"cross_entropy_probs[{reduction},{'w' if weight is not None else '-'},{smoothing}]"
                yield Case(tag, lambda x, t, weight=weight, r=reduction, s=smoothing: nerve.cross_entropy(
                    x, t, weight=weight, reduction=r, label_smoothing=s),
                    lambda x, t, weight=weight, r=reduction, s=smoothing: ref_cross_entropy_probs(
                    x, t, weight, r, s), [shape, shape], make=_probs(shape, tshape), second=True,
                    rtol=1e-12, atol=1e-12)
    yield Case("cross_entropy_ignore_in_range", lambda x, y: nerve.cross_entropy(x, y, ignore_index=1),
               lambda x, y: ref_cross_entropy(x, y, ignore_index=1), [(5, 3), (5,)],
               make=_indices((5, 3), (5,), ignore_index=1), second=True)
    yield Case("cross_entropy_unbatched", lambda x, y: nerve.cross_entropy(x, y, reduction="none"),
               lambda x, y: ref_cross_entropy(x[None], y[None], reduction="none")[0], [(5,), ()],
               make=lambda rng: [rng.standard_normal(5), np.array(2)], second=True)
    yield Case("cross_entropy_empty_sum", lambda x, y: nerve.cross_entropy(x, y, reduction="sum"),
               lambda x, y: np.array(0.0), [(0, 3), (0,)],
               make=lambda rng: [np.zeros((0, 3)), np.zeros(0, dtype=np.int64)])


def _unit(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def _bce_cases():
    w = RNG.uniform(0.5, 2.0, 3)
    pw = RNG.uniform(0.5, 3.0, 3)
    for reduction in REDUCTIONS:
        for weight in (None, w):
            tag = f"[{reduction},{'w' if weight is not None else '-'}]"
            yield Case(f"bce{tag}", lambda p, t, weight=weight, r=reduction: nerve.binary_cross_entropy(
                p, t, weight=weight, reduction=r), lambda p, t, weight=weight, r=reduction: ref_bce(
                p, t, weight, r), [(4, 3), (4, 3)], make=lambda rng: [_unit(rng, (4, 3)), _unit(rng, (4, 3))],
                second=True, rtol=1e-12, atol=1e-12)
            for pos_weight in (None, pw):
                tag2 = tag[:-1] + f",{'pw' if pos_weight is not None else '-'}]"
                yield Case(f"bce_logits{tag2}", lambda x, t, weight=weight, pw=pos_weight, r=reduction:
                           nerve.binary_cross_entropy_with_logits(x, t, weight=weight, reduction=r, pos_weight=pw),
                           lambda x, t, weight=weight, pw=pos_weight, r=reduction: ref_bce_logits(
                           x, t, weight, pw, r), [(4, 3), (4, 3)],
                           make=lambda rng: [rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))],
                           second=True, rtol=1e-12, atol=1e-12)
    yield Case("bce_empty", nerve.binary_cross_entropy, lambda p, t: np.array(np.nan), [(0, 3), (0, 3)],
               check_grad=False)


CASES = list(_cross_entropy_cases()) + list(_bce_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


# --- cross-entropy: recorded values, edge cases, bad input -------------------------------------------------
X4 = [[1.0, 2.0, 0.5], [0.1, -1.0, 2.0], [0.3, 0.3, -0.7], [2.0, 1.0, 0.0]]
Y4 = [0, 2, -100, 1]
W3 = [1.0, 2.0, 0.5]


def test_cross_entropy_matches_values_recorded_from_pytorch():
    """Weighted mean over non-ignored targets, with label smoothing (recorded with torch 2.13)."""
    x = T(X4, requires_grad=True)
    loss = nerve.cross_entropy(x, nerve.tensor(Y4), weight=T(W3), label_smoothing=0.1)
    assert loss.item() == pytest.approx(1.2794374011986582, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [
        [-0.1995016297383282, 0.16352588034246435, 0.0359757493958638],
        [0.010666924496316172, -0.012326707533680124, 0.0016597830373639836], [0.0, 0.0, 0.0],
        [0.3547748091147834, -0.3993153610890395, 0.04454055197425596]], rtol=1e-10)
    assert nerve.cross_entropy(T(X4), nerve.tensor(Y4), weight=T(W3)).item() == pytest.approx(1.2487065587975035)
    assert nerve.cross_entropy(T(X4), nerve.tensor(Y4)).item() == pytest.approx(1.0179197447138129)
    assert nerve.cross_entropy(T(X4), nerve.tensor(Y4), weight=T(W3), reduction="sum").item() == pytest.approx(
        4.3704729557912625)
    np.testing.assert_allclose(
        nerve.cross_entropy(T(X4), nerve.tensor(Y4), weight=T(W3), reduction="none", label_smoothing=0.1).numpy(),
        [1.4304415971764106, 0.36634454183383086, 0.0, 2.6812447651850624], rtol=1e-12)


def test_cross_entropy_unbatched_mean_and_shape():
    x = RNG.standard_normal((5, 3))
    single = nerve.cross_entropy(T(x[0]), nerve.tensor(2))
    assert single.shape == () and single.item() == pytest.approx(ref_cross_entropy(x[:1], np.array([2])))
    assert nerve.cross_entropy(T(x[0]), nerve.tensor(2), reduction="none").shape == ()


def test_cross_entropy_is_stable_for_huge_logits():
    x = T([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]], requires_grad=True)
    loss = nerve.cross_entropy(x, nerve.tensor([0, 1]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, np.log(2)], atol=1e-12)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))


def test_cross_entropy_empty_and_all_ignored_batches():
    x = T(np.zeros((0, 3)), requires_grad=True)
    assert np.isnan(nerve.cross_entropy(x, nerve.tensor(np.zeros(0, dtype=np.int64))).item())
    x = T(RNG.standard_normal((2, 3)), requires_grad=True)
    loss = nerve.cross_entropy(x, nerve.tensor([-100, -100]))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    gx, = nerve.grad(nerve.cross_entropy(x, nerve.tensor([-100, -100])), [x], create_graph=True)
    np.testing.assert_array_equal(gx.numpy(), 0.0)


def test_cross_entropy_float32_stays_float32():
    x = nerve.tensor(RNG.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    loss = nerve.cross_entropy(x, nerve.tensor([0, 1, 2, 0]), weight=np.array([1.0, 2.0, 0.5]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32


def test_cross_entropy_bad_input():
    x = T(RNG.standard_normal((4, 10)))
    with pytest.raises(ValueError, match=r"target class 12 is out of range for 10 classes \(expected 0..9"):
        nerve.cross_entropy(x, nerve.tensor([1, 12, 3, 4]))
    with pytest.raises(ValueError, match="target class -1 is out of range"):
        nerve.cross_entropy(x, nerve.tensor([1, -1, 3, 4]))
    with pytest.raises(ValueError, match=r"class indices must be an integer tensor"):
        nerve.cross_entropy(x, T([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match=r"target of shape \(3,\) does not match input \(4, 10\)"):
        nerve.cross_entropy(x, nerve.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"weight must have shape \(10,\), got \(3,\)"):
        nerve.cross_entropy(x, nerve.tensor([1, 2, 3, 4]), weight=T([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="cross_entropy: reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        nerve.cross_entropy(x, nerve.tensor([1, 2, 3, 4]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        nerve.cross_entropy(x, nerve.tensor([1, 2, 3, 4]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="input must have a class dimension"):
        nerve.cross_entropy(T(1.0), nerve.tensor(0))
    with pytest.raises(ValueError, match=r"has no classes in dim 1"):
        nerve.cross_entropy(T(np.zeros((2, 0))), nerve.tensor([0, 0]))
    with pytest.raises(TypeError, match="class indices \\(integers\\) or probabilities"):
        nerve.cross_entropy(x, nerve.tensor([True, False, True, True]))


# --- binary cross-entropies: PyTorch's clamps and recorded values, edge cases, bad input ---------------------
def test_bce_clamps_its_logs_at_minus_100_as_pytorch_does():
    edge = nerve.binary_cross_entropy(T([0.0, 1.0, 0.25, 0.9]), T([1.0, 0.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(edge.numpy(), [100.0, 100.0, 0.2876820724517809, 0.10536051565782628],
                               rtol=1e-12)
    x = T([0.0, 1.0], requires_grad=True)
    nerve.binary_cross_entropy(x, T([1.0, 0.0])).backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    gx, = nerve.grad(nerve.binary_cross_entropy(x, T([1.0, 0.0])), [x], create_graph=True)
    assert np.all(np.isfinite(gx.numpy()))


def test_bce_with_logits_recorded_values_and_huge_logits():
    recorded = nerve.binary_cross_entropy_with_logits(T([3.0, -2.0, 0.5, 40.0]), T([1.0, 0.0, 0.0, 1.0]),
                                                      pos_weight=T([2.5]), reduction="none")
    np.testing.assert_allclose(recorded.numpy(), [0.12146837893435515, 0.1269280110429727, 0.9740769841801067,
                                                  1.0620885638228972e-17], rtol=1e-10)
    x = T([1000.0, -1000.0], requires_grad=True)
    huge = nerve.binary_cross_entropy_with_logits(x, T([0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(huge.numpy(), [1000.0, 1000.0])
    gx, = nerve.grad(huge.sum(), [x], create_graph=True)
    np.testing.assert_allclose(gx.numpy(), [1.0, -1.0])


def test_bce_weights_broadcast_and_targets_may_be_arrays():
    p = RNG.uniform(0.1, 0.9, (4, 3))
    t = RNG.uniform(0, 1, (4, 3))
    w = RNG.uniform(0.5, 2, (4, 1))
    np.testing.assert_allclose(nerve.binary_cross_entropy(T(p), t, weight=w).item(), ref_bce(p, t, w), rtol=1e-12)
    np.testing.assert_allclose(nerve.binary_cross_entropy_with_logits(T(p), t, weight=w).item(),
                               ref_bce_logits(p, t, w), rtol=1e-12)


def test_bce_bad_input():
    with pytest.raises(ValueError, match=r"input must hold probabilities in \[0, 1\]"):
        nerve.binary_cross_entropy(T([0.5, 1.5]), T([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: target shape \(2, 1\) differs from input shape "
                                         r"\(2,\)"):
        nerve.binary_cross_entropy(T([0.5, 0.5]), T([[1.0], [0.0]]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: pos_weight of shape \(3,\) does not "
                                         r"broadcast to input \(2, 2\)"):
        nerve.binary_cross_entropy_with_logits(T(np.zeros((2, 2))), T(np.zeros((2, 2))), pos_weight=np.ones(3))
    with pytest.raises(ValueError, match="binary_cross_entropy: reduction must be"):
        nerve.binary_cross_entropy(T([0.5]), T([1.0]), reduction="avg")
