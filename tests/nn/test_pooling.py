"""Pooling (max, average, adaptive), upsampling and padding modes against plain-loop NumPy references,
with gradcheck in float64 (second order for a subset) and both backward paths compared."""
import itertools
import math

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn

RNG = np.random.default_rng(11)


def T(a, requires_grad=True):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _out_size(s, k, st, p, d, ceil):
    span = s + 2 * p - d * (k - 1) - 1
    out = (span + (st - 1 if ceil else 0)) // st + 1
    if ceil and (out - 1) * st >= s + p:
        out -= 1
    return out


# --- references -------------------------------------------------------------------------------------
def ref_max_pool(x, kernel, stride, padding, dilation, ceil_mode):
    """(out, flat indices, dx for an all-ones gradient) by loops; the first maximum of a window wins."""
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


def ref_avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    """PyTorch's definition: window clipped to the padded input for the size, to the input for the sum."""
    spatial = x.shape[2:]
    size = [_out_size(s, k, st, p, 1, ceil_mode) for s, k, st, p in zip(spatial, kernel, stride, padding)]
    out = np.zeros(x.shape[:2] + tuple(size))
    weights = []  # (pos, slices, divisor) for the reference gradient
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


def ref_adaptive(x, size, reduce):
    out = np.zeros(x.shape[:2] + tuple(size))
    for pos in itertools.product(*map(range, size)):
        where = tuple(slice(i * s // o, -(-(i + 1) * s // o)) for i, s, o in zip(pos, x.shape[2:], size))
        out[(slice(None), slice(None)) + pos] = reduce(x[(slice(None), slice(None)) + where],
                                                      axis=tuple(range(2, x.ndim)))
    return out


def ref_interpolate(x, size, mode, align_corners, scale=None):
    """Per output pixel: nearest source, or the weighted 2^d corners of the source cell."""
    spatial = x.shape[2:]
    out = np.zeros(x.shape[:2] + tuple(size))
    for pos in itertools.product(*map(range, size)):
        axes = []
        for d, (o, s, n) in enumerate(zip(pos, size, spatial)):
            r = (1.0 / scale[d]) if scale else n / s
            if mode == "nearest":
                axes.append([(min(int(math.floor(o * r)), n - 1), 1.0)])
                continue
            src = o * (n - 1) / (s - 1) if align_corners and s > 1 else (0.0 if align_corners
                                                                            else max((o + 0.5) * r - 0.5, 0.0))
            i0 = min(int(math.floor(src)), n - 1)
            lam = src - i0
            axes.append([(i0, 1 - lam), (min(i0 + 1, n - 1), lam)])
        for combo in itertools.product(*axes):
            w = math.prod(c[1] for c in combo)
            out[(slice(None), slice(None)) + pos] += w * x[(slice(None), slice(None)) + tuple(c[0] for c in combo)]
    return out


def _check_vjp_paths(fn, inputs):
    out = fn(*inputs)
    v = nerve.tensor(RNG.standard_normal(out.shape))
    fast = nerve.grad(fn(*inputs), inputs, v)
    slow = nerve.grad(fn(*inputs), inputs, v, create_graph=True)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
    return fast


# --- max pooling ----------------------------------------------------------------------------------------
#: (input shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ((2, 3, 6, 6), 2, None, 0, 1, False),
    ((1, 2, 7, 5), 3, 2, 1, 1, False),
    ((2, 2, 7, 8), (2, 3), (1, 2), (1, 1), (2, 1), False),
    ((1, 2, 7, 7), 3, 2, 0, 1, True),
    ((2, 1, 6, 5), 3, 2, 1, 1, True),
    ((2, 3, 9), 3, 2, 1, 1, False),
    ((1, 2, 10), 2, 3, 0, 2, True),
]


@pytest.mark.parametrize("case", MAX_CASES, ids=[f"max{i}" for i in range(len(MAX_CASES))])
def test_max_pool_matches_reference_and_gradcheck(case):
    shape, kernel, stride, padding, dilation, ceil = case
    n = len(shape) - 2
    fn_pool = F.max_pool1d if n == 1 else F.max_pool2d
    tup = (lambda v: tuple(v) if isinstance(v, tuple) else (v,) * n)
    x = T(RNG.standard_normal(shape))

    def fn(x):
        return fn_pool(x, kernel, stride, padding, dilation, ceil)
    out, idx = fn_pool(x, kernel, stride, padding, dilation, ceil, return_indices=True)
    want, want_idx = ref_max_pool(x.numpy(), tup(kernel), tup(stride if stride is not None else kernel),
                                  tup(padding), tup(dilation), ceil)
    np.testing.assert_array_equal(out.numpy(), want)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    g = RNG.standard_normal(out.shape)
    gx = nerve.grad(fn(x), x, nerve.tensor(g))[0]
    ref_gx = np.zeros(x.shape)
    flat = ref_gx.reshape(shape[:2] + (-1,))
    for nc in itertools.product(range(shape[0]), range(shape[1])):
        np.add.at(flat[nc], want_idx[nc].ravel(), g[nc].ravel())
    np.testing.assert_allclose(gx.numpy(), ref_gx, rtol=1e-12)
    _check_vjp_paths(fn, [x])
    assert nerve.gradcheck(fn, [x])


def test_max_pool_ties_go_to_the_first_maximum():
    """ReLU outputs make windows of equal zeros common: PyTorch sends the gradient to the first one only."""
    x = T(np.maximum(RNG.standard_normal((2, 2, 6, 6)), 0) * (RNG.random((2, 2, 6, 6)) < 0.3))
    for stride in (2, 1):
        out = F.max_pool2d(x, 3, stride, 1)
        gx = nerve.grad(out, x, nerve.ones(*out.shape, dtype=np.float64))[0].numpy()
        _, idx = ref_max_pool(x.numpy(), (3, 3), (stride,) * 2, (1, 1), (1, 1), False)
        want = np.zeros(x.shape)
        for nc in itertools.product(range(2), range(2)):
            np.add.at(want[nc].reshape(-1), idx[nc].ravel(), 1.0)
        np.testing.assert_array_equal(gx, want)


def test_max_pool_second_order_and_nan():
    x = T(RNG.standard_normal((1, 2, 5, 5)))
    assert nerve.gradgradcheck(lambda x: F.max_pool2d(x, 3, 2, 1), [x])
    bad = np.ones((1, 1, 4, 4))
    bad[0, 0, 1, 1] = np.nan
    assert np.isnan(F.max_pool2d(nerve.tensor(bad), 2).numpy()[0, 0, 0, 0])


# --- average pooling ----------------------------------------------------------------------------------------
#: (input shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    ((2, 3, 6, 6), 2, None, 0, False, True, None),
    ((1, 2, 7, 5), 3, 2, 1, False, True, None),
    ((1, 2, 7, 5), 3, 2, 1, False, False, None),
    ((2, 2, 7, 8), (2, 3), (1, 2), (1, 1), True, True, None),
    ((1, 2, 7, 7), 3, 2, 1, True, False, None),
    ((1, 2, 6, 6), 3, 3, 1, False, True, 4),
    ((2, 3, 9), 3, 2, 1, True, True, None),
]


@pytest.mark.parametrize("case", AVG_CASES, ids=[f"avg{i}" for i in range(len(AVG_CASES))])
def test_avg_pool_matches_reference_and_gradcheck(case):
    shape, kernel, stride, padding, ceil, include, override = case
    n = len(shape) - 2
    tup = (lambda v: tuple(v) if isinstance(v, tuple) else (v,) * n)
    x = T(RNG.standard_normal(shape))

    def fn(x):
        if n == 1:
            return F.avg_pool1d(x, kernel, stride, padding, ceil, include)
        return F.avg_pool2d(x, kernel, stride, padding, ceil, include, override)
    want, weights = ref_avg_pool(x.numpy(), tup(kernel), tup(stride if stride is not None else kernel),
                                 tup(padding), ceil, include, override)
    out = fn(x)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    g = RNG.standard_normal(out.shape)
    ref_gx = np.zeros(x.shape)
    for pos, where, div in weights:
        ref_gx[(slice(None), slice(None)) + where] += (g[(slice(None), slice(None)) + pos] / div).reshape(
            shape[:2] + (1,) * n)
    np.testing.assert_allclose(nerve.grad(fn(x), x, nerve.tensor(g))[0].numpy(), ref_gx, rtol=1e-12)
    _check_vjp_paths(fn, [x])
    assert nerve.gradcheck(fn, [x])


def test_avg_pool_second_order():
    x = T(RNG.standard_normal((1, 2, 5, 4)))
    assert nerve.gradgradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [x])


# --- adaptive pooling -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,size", [((2, 3, 9, 8), (3, 4)), ((1, 2, 7, 5), (3, 2)), ((2, 2, 6, 6), 1),
                                        ((1, 2, 5, 7), (5, 3)), ((2, 3, 10), 4)])
def test_adaptive_pools(shape, size):
    n = len(shape) - 2
    sizes = (size,) * n if isinstance(size, int) else size
    x = T(RNG.standard_normal(shape))
    avg = F.adaptive_avg_pool1d if n == 1 else F.adaptive_avg_pool2d
    mx = F.adaptive_max_pool1d if n == 1 else F.adaptive_max_pool2d
    np.testing.assert_allclose(avg(x, size).numpy(), ref_adaptive(x.numpy(), sizes, np.mean), rtol=1e-12)
    np.testing.assert_array_equal(mx(x, size).numpy(), ref_adaptive(x.numpy(), sizes, np.max))
    out, idx = mx(x, size, return_indices=True)
    flat = x.numpy().reshape(shape[:2] + (-1,))
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(shape[:2] + (-1,)), 2).reshape(
        out.shape), out.numpy())
    for fn in (lambda x: avg(x, size), lambda x: mx(x, size)):
        _check_vjp_paths(fn, [x])
        assert nerve.gradcheck(fn, [x])


def test_adaptive_second_order():
    x = T(RNG.standard_normal((1, 2, 5, 4)))
    assert nerve.gradgradcheck(lambda x: F.adaptive_max_pool2d(x, (2, 3)), [x])
    assert nerve.gradgradcheck(lambda x: F.adaptive_avg_pool2d(x, (3, 3)), [x])


# --- upsampling ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,align", [("nearest", None), ("bilinear", False), ("bilinear", True)])
@pytest.mark.parametrize("kw", [{"scale_factor": 2}, {"size": (5, 7)}, {"scale_factor": (1.5, 0.7)}])
def test_interpolate_2d(mode, align, kw):
    x = T(RNG.standard_normal((2, 2, 4, 5)))

    def fn(x):
        return F.interpolate(x, mode=mode, align_corners=align, **kw)
    out = fn(x)
    if "size" in kw:
        size, scale = kw["size"], None
    else:
        sf = kw["scale_factor"]
        scale = sf if isinstance(sf, tuple) else (sf, sf)
        size = tuple(int(math.floor(s * f)) for s, f in zip((4, 5), scale))
    np.testing.assert_allclose(out.numpy(), ref_interpolate(x.numpy(), size, mode, align, scale), rtol=1e-12,
                               atol=1e-14)
    _check_vjp_paths(fn, [x])
    assert nerve.gradcheck(fn, [x])


def test_interpolate_1d_second_order_and_layers():
    x = T(RNG.standard_normal((2, 3, 6)))
    np.testing.assert_allclose(F.interpolate(x, scale_factor=2.5, mode="linear").numpy(),
                               ref_interpolate(x.numpy(), (15,), "bilinear", False, (2.5,)), rtol=1e-12)
    assert nerve.gradgradcheck(lambda x: F.interpolate(x, size=4, mode="linear", align_corners=True),
                               [T(RNG.standard_normal((1, 2, 3)))])
    img = nerve.randn(1, 2, 3, 4)
    assert nn.Upsample(scale_factor=2)(img).shape == (1, 2, 6, 8)
    np.testing.assert_allclose(nn.UpsamplingBilinear2d(size=(5, 5))(img).numpy(),
                               F.interpolate(img, size=(5, 5), mode="bilinear", align_corners=True).numpy())
    np.testing.assert_allclose(nn.UpsamplingNearest2d(scale_factor=3)(img).numpy(),
                               img.numpy().repeat(3, 2).repeat(3, 3))
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nn.Upsample()
    with pytest.raises(ValueError, match="mode 'bilinear' takes inputs with 4 dims"):
        F.interpolate(nerve.randn(1, 2, 5), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners only applies"):
        F.interpolate(img, scale_factor=2, align_corners=True)


# --- padding modes ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap"),
                                          ("constant", "constant")])
def test_pad_modes(mode, np_mode):
    x = T(RNG.standard_normal((2, 2, 4, 5)))

    def fn(x):
        return F.pad(x, (2, 1, 3, 0), mode=mode)
    np.testing.assert_allclose(fn(x).numpy(), np.pad(x.numpy(), [(0, 0), (0, 0), (3, 0), (2, 1)], mode=np_mode))
    _check_vjp_paths(fn, [x])
    assert nerve.gradcheck(fn, [x])


# --- layers ----------------------------------------------------------------------------------------------------
def test_pooling_layers_shapes_configs_and_errors():
    x = nerve.randn(2, 3, 8, 6)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 3)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.shape == out.shape and idx.dtype == np.int64
    assert nn.AvgPool2d(3, stride=1, padding=1)(x).shape == (2, 3, 8, 6)
    assert nn.AdaptiveAvgPool2d((1, 1))(x).shape == (2, 3, 1, 1)
    assert nn.AdaptiveMaxPool2d((None, 2))(x).shape == (2, 3, 8, 2)
    assert nn.MaxPool1d(2)(nerve.randn(2, 3, 7)).shape == (2, 3, 3)
    assert nn.AvgPool1d(2)(nerve.randn(3, 7)).shape == (3, 3)
    assert nn.AdaptiveAvgPool1d(2)(nerve.randn(2, 3, 7)).shape == (2, 3, 2)
    assert nn.AdaptiveMaxPool1d(3)(nerve.randn(2, 3, 7)).shape == (2, 3, 3)
    assert nn.MaxPool2d(3, 2, 1).get_config() == {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1,
                                                  "return_indices": False, "ceil_mode": False}
    assert sum(1 for _ in nn.MaxPool2d(2).parameters()) == 0
    with pytest.raises(ValueError, match=r"max_pool2d: expected input \(N, C, H, W\) or \(C, H, W\), got \(2, 3\)"):
        nn.MaxPool2d(2)(nerve.randn(2, 3))
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: input of spatial size \(2, 2\).*smaller than the window"):
        F.avg_pool2d(nerve.randn(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match="output_size must be 2 positive ints"):
        F.adaptive_avg_pool2d(x, (0, 2))
