"""layer_norm and standardize (the one normalising kernel behind layer, batch, group and instance norm):
forward against NumPy, gradcheck and gradgradcheck (through the reference) in float64, kernel against
reference, bad input."""
import numpy as np
import pytest

import nerve
from nerve.ops import standardize
from tests.helpers import T
from tests.ops.table import Case, table_tests


def np_standardize(x, w, b, dims, eps=1e-5):
    mean = x.mean(axis=dims, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=dims, keepdims=True)
    out = (x - mean) / np.sqrt(var + eps)
    if w is not None:
        out = out * w
    return out if b is None else out + b


def _moments(x, dims):
    """The (mean, biased var) arrays a caller such as batch norm passes as ``stats``."""
    return x.data.mean(axis=dims, keepdims=True), x.data.var(axis=dims, keepdims=True)


# (input shape, normalized_shape, affine: "wb", "w", "b" or "")
LAYER_NORM = [((3, 4), (4,), "wb"), ((2, 3, 4), (3, 4), "wb"), ((5, 6), (6,), ""), ((5, 6), (6,), "w"),
              ((5, 6), (6,), "b"), ((4,), (4,), "wb"), ((0, 4), (4,), "wb")]


def _layer_norm_case(shape, normalized, affine):
    dims = tuple(range(len(shape) - len(normalized), len(shape)))
    shapes = [shape] + [normalized for c in affine]

    def fn(x, *params):
        w = params[0] if "w" in affine else None
        b = params[-1] if "b" in affine else None
        return nerve.layer_norm(x, normalized, w, b)

    def ref(x, *params):
        w = params[0] if "w" in affine else None
        b = params[-1] if "b" in affine else None
        return np_standardize(x, w, b, dims)
    return Case(f"layer_norm[{affine or '-'}]", fn, ref, shapes, second=True, rtol=1e-10, atol=1e-10)


def _cases():
    for shape, normalized, affine in LAYER_NORM:
        yield _layer_norm_case(shape, normalized, affine)
    # batch norm's layout: per channel over the batch (and positions), with the moments passed in
    for shape, dims, param in (((6, 3), (0,), (3,)), ((5, 3, 2), (0, 2), (3, 1))):
        yield Case(f"standardize_stats{dims}", lambda x, w, b, d=dims: standardize(x, w, b, d, 1e-5, _moments(x, d)),
                   lambda x, w, b, d=dims: np_standardize(x, w, b, d), [shape, param, param], second=True,
                   rtol=1e-10, atol=1e-10)
    # group norm's layout: (N, G, C/G, positions) over the last two, a weight per channel
    yield Case("standardize_groups", lambda x, w, b: standardize(x, w, b, (2, 3), 1e-5),
               lambda x, w, b: np_standardize(x, w, b, (2, 3)), [(2, 2, 3, 4), (2, 3, 1), (2, 3, 1)], second=True,
               rtol=1e-10, atol=1e-10)
    yield Case("standardize_no_affine", lambda x: standardize(x, None, None, (1,), 1e-3),
               lambda x: np_standardize(x, None, None, (1,), 1e-3), [(4, 5)], second=True, rtol=1e-10, atol=1e-10)
    yield Case("batch_norm", lambda x, w, b: nerve.functional.batch_norm(x, None, None, w, b, training=True),
               lambda x, w, b: np_standardize(x, w[:, None], b[:, None], (0, 2)), [(5, 3, 2), (3,), (3,)],
               second=True, rtol=1e-10, atol=1e-10)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_layer_norm_float32_stays_float32_and_is_normalised():
    x = nerve.tensor((np.random.default_rng(0).standard_normal((8, 16)) * 5 + 3).astype(np.float32),
                     requires_grad=True)
    out = nerve.layer_norm(x, 16)
    out.sum().backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(out.numpy().mean(1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.numpy().std(1), 1.0, rtol=1e-3)


def test_layer_norm_bad_input():
    with pytest.raises(ValueError, match=r"layer_norm: expected input \(\.\.\., 4\), got \(3, 5\)"):
        nerve.layer_norm(T(np.zeros((3, 5))), 4)
    with pytest.raises(ValueError, match=r"layer_norm: expected input \(\.\.\., 2, 4\), got \(4,\)"):
        nerve.layer_norm(T(np.zeros(4)), (2, 4))
    with pytest.raises(ValueError, match=r"layer_norm: weight must have shape \(4,\), got \(3,\)"):
        nerve.layer_norm(T(np.zeros((3, 4))), 4, weight=T(np.ones(3)))
    with pytest.raises(ValueError, match=r"layer_norm: bias must have shape \(4,\), got \(4, 1\)"):
        nerve.layer_norm(T(np.zeros((3, 4))), 4, bias=T(np.ones((4, 1))))
