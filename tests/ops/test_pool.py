"""The pooling primitives (MaxPool with its MaxScatter/MaxGather adjoints, AvgPool with AvgPoolAdjoint; 1-d and
2-d) through the op table: forward against plain-loop NumPy references, gradcheck and gradgradcheck in float64,
both rule paths, the poisoned namespace. Then gradients and indices against the loops, ties, NaN, layouts, errors."""
import itertools
import math

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve.ops.conv import window_geometry
from nerve.ops.pool import AvgPoolAdjoint, MaxGather, MaxPool, MaxScatter
from tests.helpers import T
from tests.ops.table import Case, table_tests

RNG = np.random.default_rng(11)


def _out_size(s, k, st, p, d, ceil):
    span = s + 2 * p - d * (k - 1) - 1
    out = (span + (st - 1 if ceil else 0)) // st + 1
    if ceil and (out - 1) * st >= s + p:
        out -= 1
    return out


def _tup(v, n):
    return tuple(v) if isinstance(v, tuple) else (v,) * n


# --- references -------------------------------------------------------------------------------------
def ref_max_pool(x, kernel, stride, padding, dilation, ceil_mode):
    """(out, flat indices) by loops; the first maximum of a window wins."""
    spatial = x.shape[2:]
    size = [_out_size(*a, ceil_mode) for a in zip(spatial, kernel, stride, padding, dilation)]
    out = np.zeros(x.shape[:2] + tuple(size))
    idx = np.zeros(out.shape, dtype=np.int64)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for pos in itertools.product(*map(range, size)):
            best, where = -np.inf, None
            for k in itertools.product(*map(range, kernel)):
                src = tuple(p * s - pd + kk * d for p, s, pd, kk, d in zip(pos, stride, padding, k, dilation))
                if all(0 <= a < b for a, b in zip(src, spatial)) and x[(n, c) + src] > best:
                    best, where = x[(n, c) + src], src
            out[(n, c) + pos] = best
            idx[(n, c) + pos] = np.ravel_multi_index(where, spatial)
    return out, idx


def ref_scatter(g, idx, shape):
    """Each g added at its flat input index (the gradient of max pooling)."""
    dx = np.zeros(shape)
    flat = dx.reshape(shape[:2] + (-1,))
    for nc in itertools.product(range(shape[0]), range(shape[1])):
        np.add.at(flat[nc], idx[nc].ravel(), g[nc].ravel())
    return dx


def ref_gather(a, idx):
    """a read at each flat input index."""
    flat = a.reshape(a.shape[:2] + (-1,))
    return np.take_along_axis(flat, idx.reshape(idx.shape[:2] + (-1,)), 2).reshape(idx.shape)


def ref_avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    """PyTorch's definition: window clipped to the padded input for the size, to the input for the sum.
    Returns (out, [(output position, input slices, divisor)]) for the reference gradient."""
    spatial = x.shape[2:]
    size = [_out_size(s, k, st, p, 1, ceil_mode) for s, k, st, p in zip(spatial, kernel, stride, padding)]
    out = np.zeros(x.shape[:2] + tuple(size))
    weights = []
    for pos in itertools.product(*map(range, size)):
        start = [p * s - pd for p, s, pd in zip(pos, stride, padding)]
        end = [min(a + k, n + pd) for a, k, n, pd in zip(start, kernel, spatial, padding)]
        pool = math.prod(e - a for a, e in zip(start, end))
        start = [max(a, 0) for a in start]
        end = [min(e, n) for e, n in zip(end, spatial)]
        inside = math.prod(e - a for a, e in zip(start, end))
        div = divisor_override or (pool if count_include_pad else inside)
        where = tuple(slice(a, e) for a, e in zip(start, end))
        out[(slice(None), slice(None)) + pos] = x[(slice(None), slice(None)) + where].sum(
            axis=tuple(range(2, x.ndim))) / div
        weights.append((pos, where, div))
    return out, weights


def ref_avg_spread(g, weights, shape):
    """Each g / divisor added over its window (the gradient of average pooling)."""
    n = len(shape) - 2
    dx = np.zeros(shape)
    for pos, where, div in weights:
        dx[(slice(None), slice(None)) + where] += (g[(slice(None), slice(None)) + pos] / div).reshape(
            shape[:2] + (1,) * n)
    return dx


# --- the cases ----------------------------------------------------------------------------------------
#: (input shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ((2, 3, 6, 6), 2, None, 0, 1, False),
    ((1, 2, 7, 5), 3, 2, 1, 1, False),
    ((2, 2, 7, 8), (2, 3), (1, 2), (1, 1), (2, 1), False),
    ((1, 2, 7, 7), 3, 2, 0, 1, True),
    ((2, 1, 6, 5), 3, 2, 1, 1, True),
    ((2, 3, 9), 3, 2, 1, 1, False),
    ((1, 2, 10), 2, 3, 0, 2, True),
    ((1, 2, 4, 5), (3, 2), 2, 0, (2, 1), True),  # ceil_mode: one window overhanging a height smaller than it
]
#: (input shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    ((2, 3, 6, 6), 2, None, 0, False, True, None),
    ((1, 2, 7, 5), 3, 2, 1, False, True, None),
    ((1, 2, 7, 5), 3, 2, 1, False, False, None),
    ((2, 2, 7, 8), (2, 3), (1, 2), (1, 1), True, True, None),
    ((1, 2, 7, 7), 3, 2, 1, True, False, None),
    ((1, 2, 6, 6), 3, 3, 1, False, True, 4),
    ((2, 3, 9), 3, 2, 1, True, True, None),
    ((1, 2, 5, 4), 3, 2, 1, True, False, None),
    ((1, 2, 2, 5), 3, 2, 0, True, True, None),  # ceil_mode: one window overhanging a height smaller than it
]


def _max_args(case):
    shape, kernel, stride, padding, dilation, ceil = case
    n = len(shape) - 2
    return (_tup(kernel, n), _tup(stride if stride is not None else kernel, n), _tup(padding, n), _tup(dilation, n),
            ceil)


def _max_fn(case):
    shape, kernel, stride, padding, dilation, ceil = case
    pool = F.max_pool1d if len(shape) == 3 else F.max_pool2d
    return lambda x: pool(x, kernel, stride, padding, dilation, ceil)


def _avg_fn(case):
    shape, kernel, stride, padding, ceil, include, override = case
    if len(shape) == 3:
        return lambda x: F.avg_pool1d(x, kernel, stride, padding, ceil, include)
    return lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil, include, override)


def _avg_ref(case):
    shape, kernel, stride, padding, ceil, include, override = case
    n = len(shape) - 2
    return lambda x: ref_avg_pool(x, _tup(kernel, n), _tup(stride if stride is not None else kernel, n),
                                  _tup(padding, n), ceil, include, override)[0]


#: the adjoints on their own: max pooling 3x3, stride 2, padding 1 over a fixed (1, 2, 7, 5) input
ADJ_SHAPE, ADJ_X = (1, 2, 7, 5), RNG.standard_normal((1, 2, 7, 5))
ADJ_GEOM = window_geometry("test", (7, 5), (3, 3), (2, 2), (1, 1), (1, 1), (1, 1))
ADJ_IDX = ref_max_pool(ADJ_X, (3, 3), (2, 2), (1, 1), (1, 1), False)[1]


def _adjoint_arg():
    keep: list = []
    MaxPool.apply(nerve.tensor(ADJ_X), ADJ_GEOM, keep)
    return keep[0]


ADJ_ARG = _adjoint_arg()
ADJ_WEIGHTS = ref_avg_pool(ADJ_X, (3, 3), (2, 2), (1, 1), False, True)[1]


def _cases():
    for i, case in enumerate(MAX_CASES):
        yield Case(f"max_pool{len(case[0]) - 2}d[{i}]", _max_fn(case),
                   lambda x, case=case: ref_max_pool(x, *_max_args(case))[0], [case[0]], second=True)
    for i, case in enumerate(AVG_CASES):
        yield Case(f"avg_pool{len(case[0]) - 2}d[{i}]", _avg_fn(case), _avg_ref(case), [case[0]], second=True,
                   rtol=1e-12, atol=1e-14)
    yield Case("max_pool2d_unbatched", lambda x: F.max_pool2d(x, 2),
               lambda x: ref_max_pool(x[None], (2, 2), (2, 2), (0, 0), (1, 1), False)[0][0], [(3, 4, 6)], second=True)
    yield Case("max_scatter", lambda g: MaxScatter.apply(g, ADJ_ARG, ADJ_GEOM, ADJ_SHAPE),
               lambda g: ref_scatter(g, ADJ_IDX, ADJ_SHAPE), [ADJ_IDX.shape], second=True)
    yield Case("max_gather", lambda a: MaxGather.apply(a, ADJ_ARG, ADJ_GEOM, ADJ_SHAPE),
               lambda a: ref_gather(a, ADJ_IDX), [ADJ_SHAPE], second=True)
    yield Case("avg_pool_adjoint", lambda g: AvgPoolAdjoint.apply(g, ADJ_GEOM, 9.0, ADJ_SHAPE),
               lambda g: ref_avg_spread(g, ADJ_WEIGHTS, ADJ_SHAPE), [ADJ_IDX.shape], second=True, rtol=1e-12,
               atol=1e-14)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


# --- against the loops ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", MAX_CASES, ids=[f"max{i}" for i in range(len(MAX_CASES))])
def test_max_pool_indices_and_gradient_match_reference(case):
    shape, kernel, stride, padding, dilation, ceil = case
    pool = F.max_pool1d if len(shape) == 3 else F.max_pool2d
    x = T(RNG.standard_normal(shape), True)
    out, idx = pool(x, kernel, stride, padding, dilation, ceil, return_indices=True)
    want, want_idx = ref_max_pool(x.numpy(), *_max_args(case))
    np.testing.assert_array_equal(out.numpy(), want)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    assert idx.dtype == np.int64
    g = RNG.standard_normal(out.shape)
    np.testing.assert_allclose(nerve.grad(out, x, nerve.tensor(g))[0].numpy(), ref_scatter(g, want_idx, shape),
                               rtol=1e-12)


@pytest.mark.parametrize("case", AVG_CASES, ids=[f"avg{i}" for i in range(len(AVG_CASES))])
def test_avg_pool_gradient_matches_reference(case):
    shape = case[0]
    x = T(RNG.standard_normal(shape), True)
    _, weights = ref_avg_pool(x.numpy(), *[_tup(v, len(shape) - 2) for v in (case[1], case[2] or case[1],
                                                                                case[3])], *case[4:])
    out = _avg_fn(case)(x)
    g = RNG.standard_normal(out.shape)
    np.testing.assert_allclose(nerve.grad(out, x, nerve.tensor(g))[0].numpy(), ref_avg_spread(g, weights, shape),
                               rtol=1e-12)


def test_max_pool_ties_go_to_the_first_maximum():
    """ReLU outputs make windows of equal zeros common: PyTorch sends the gradient to the first one only."""
    x = T(np.maximum(RNG.standard_normal((2, 2, 6, 6)), 0) * (RNG.random((2, 2, 6, 6)) < 0.3), True)
    for stride in (2, 1):
        out = F.max_pool2d(x, 3, stride, 1)
        gx = nerve.grad(out, x, nerve.ones(*out.shape, dtype=np.float64))[0].numpy()
        _, idx = ref_max_pool(x.numpy(), (3, 3), (stride,) * 2, (1, 1), (1, 1), False)
        np.testing.assert_array_equal(gx, ref_scatter(np.ones(out.shape), idx, x.shape))


def test_max_pool_propagates_nan():
    bad = np.ones((1, 1, 4, 4))
    bad[0, 0, 1, 1] = np.nan
    assert np.isnan(F.max_pool2d(nerve.tensor(bad), 2).numpy()[0, 0, 0, 0])


@pytest.mark.parametrize("padding", [0, 1])
def test_channels_first_and_channels_last_inputs_agree(padding):
    """Inputs in either memory layout (many channels: the blocked transposing copy) give the same results."""
    data = RNG.standard_normal((2, 20, 5, 6))
    first = T(data, True)
    last = nerve.tensor(np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2), requires_grad=True)
    for fn in (lambda x: F.max_pool2d(x, 3, 2, padding), lambda x: F.avg_pool2d(x, 3, 1, padding)):
        a, b = fn(first), fn(last)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
        g = nerve.tensor(RNG.standard_normal(a.shape))
        np.testing.assert_allclose(nerve.grad(a, first, g)[0].numpy(), nerve.grad(b, last, g)[0].numpy(), rtol=1e-12)


def test_errors_name_the_op_and_shapes():
    x = nerve.randn(2, 3, 8, 6)
    with pytest.raises(RuntimeError, match=r"max_pool2d: expected input \(N, C, H, W\) or \(C, H, W\), got \(2, 3\)"):
        F.max_pool2d(nerve.randn(2, 3), 2)
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(RuntimeError, match=r"avg_pool2d: input of spatial size \(2, 2\).*smaller than the window"):
        F.avg_pool2d(nerve.randn(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match="divisor_override must be non-zero"):
        F.avg_pool2d(x, 2, divisor_override=0)
