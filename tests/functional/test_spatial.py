"""The spatial compositions of ``nerve.functional``: padding modes, adaptive pooling and interpolate, through the
op table (forward against plain-loop NumPy references, gradcheck and gradgradcheck in float64, both rule paths,
the poisoned namespace), then indices and errors."""
import itertools
import math

import numpy as np
import pytest

import nerve
import nerve.functional as F
from tests.ops.table import Case, table_tests


# --- references -------------------------------------------------------------------------------------
def ref_adaptive(x, size, reduce):
    """PyTorch's bins [floor(i S / O), ceil((i + 1) S / O)) reduced one output at a time."""
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


# --- the cases ----------------------------------------------------------------------------------------
PAD_MODES = [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap"), ("constant", "constant")]
#: (input shape, output_size, the sizes it means)
ADAPTIVE = [((2, 3, 9, 8), (3, 4), (3, 4)), ((1, 2, 7, 5), (3, 2), (3, 2)), ((2, 2, 6, 6), 1, (1, 1)),
            ((1, 2, 5, 7), (5, 3), (5, 3)), ((2, 3, 10), 4, (4,)), ((1, 2, 10, 10), 2, (2, 2)),
            ((1, 2, 6, 5), (None, 2), (6, 2)), ((2, 2, 6), 3, (3,))]
#: (input shape, mode, align_corners, size, scale_factor)
INTERP = [((2, 2, 4, 5), mode, align, size, scale)
          for mode, align in (("nearest", None), ("bilinear", False), ("bilinear", True))
          for size, scale in ((None, 2), ((5, 7), None), (None, (1.5, 0.7)))] + [
    ((2, 3, 6), "linear", None, None, 2.5),
    ((1, 2, 3), "linear", True, 4, None),
    ((1, 2, 5), "nearest", None, 3, None),
]


def _interp_size(shape, size, scale):
    if size is not None:
        return (size,) if isinstance(size, int) else size, None
    scales = scale if isinstance(scale, tuple) else (scale,) * (len(shape) - 2)
    return tuple(int(math.floor(s * f)) for s, f in zip(shape[2:], scales)), scales


def _cases():
    for mode, np_mode in PAD_MODES:
        yield Case(f"pad[{mode}]", lambda x, mode=mode: F.pad(x, (2, 1, 3, 0), mode=mode),
                   lambda x, np_mode=np_mode: np.pad(x, [(0, 0), (0, 0), (3, 0), (2, 1)], mode=np_mode),
                   [(2, 2, 4, 5)], second=True)
        yield Case(f"pad1d[{mode}]", lambda x, mode=mode: F.pad(x, (1, 2), mode=mode),
                   lambda x, np_mode=np_mode: np.pad(x, [(0, 0), (0, 0), (1, 2)], mode=np_mode), [(1, 2, 4)],
                   second=True)
    for shape, size, sizes in ADAPTIVE:
        n = len(shape) - 2
        avg = F.adaptive_avg_pool1d if n == 1 else F.adaptive_avg_pool2d
        mx = F.adaptive_max_pool1d if n == 1 else F.adaptive_max_pool2d
        yield Case(f"adaptive_avg_pool{n}d[{size}]", lambda x, avg=avg, size=size: avg(x, size),
                   lambda x, sizes=sizes: ref_adaptive(x, sizes, np.mean), [shape], second=True, rtol=1e-12,
                   atol=1e-14)
        yield Case(f"adaptive_max_pool{n}d[{size}]", lambda x, mx=mx, size=size: mx(x, size),
                   lambda x, sizes=sizes: ref_adaptive(x, sizes, np.max), [shape], second=True)
    for shape, mode, align, size, scale in INTERP:
        out, scales = _interp_size(shape, size, scale)
        yield Case(f"interpolate[{mode},{align},{size},{scale}]",
                   lambda x, mode=mode, align=align, size=size, scale=scale: F.interpolate(
                       x, size=size, scale_factor=scale, mode=mode, align_corners=align),
                   lambda x, out=out, mode=mode, align=align, scales=scales: ref_interpolate(
                       x, out, "bilinear" if mode == "linear" else mode, align, scales),
                   [shape], second=True, rtol=1e-12, atol=1e-14)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


# --- beyond the table ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,size", [(s[0], s[1]) for s in ADAPTIVE])
def test_adaptive_max_indices_point_at_the_maxima(shape, size):
    x = nerve.tensor(np.random.default_rng(3).standard_normal(shape))
    mx = F.adaptive_max_pool1d if len(shape) == 3 else F.adaptive_max_pool2d
    out, idx = mx(x, size, return_indices=True)
    assert idx.dtype == np.int64 and idx.shape == out.shape
    flat = x.numpy().reshape(shape[:2] + (-1,))
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(shape[:2] + (-1,)), 2).reshape(
        out.shape), out.numpy())


def test_unbatched_inputs_equal_a_batch_of_one():
    x = nerve.randn(3, 6, 5)
    for fn in (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), lambda x: F.adaptive_max_pool2d(x, (4, 2))):
        np.testing.assert_array_equal(fn(x).numpy(), fn(x.unsqueeze(0)).numpy()[0])
    out, idx = F.adaptive_max_pool2d(x, (4, 2), return_indices=True)
    assert out.shape == idx.shape == (3, 4, 2)


def test_nearest_upsampling_repeats_pixels():
    img = nerve.randn(1, 2, 3, 4)
    np.testing.assert_array_equal(F.interpolate(img, scale_factor=3).numpy(), img.numpy().repeat(3, 2).repeat(3, 3))


def test_errors_name_the_function_and_shapes():
    img = nerve.randn(1, 2, 3, 4)
    with pytest.raises(ValueError, match=r"pad: reflect padding \(3, 3\) of dim 2 \(size 3\)"):
        F.pad(nerve.randn(1, 1, 3), (3, 3), mode="reflect")
    with pytest.raises(ValueError, match="mode must be"):
        F.pad(nerve.randn(1, 1, 3), (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="takes \\(left, right\\) pairs"):
        F.pad(nerve.randn(1, 3), (1, 1, 1, 1), mode="replicate")
    with pytest.raises(ValueError, match="output_size must be 2 positive ints"):
        F.adaptive_avg_pool2d(img, (0, 2))
    with pytest.raises(RuntimeError, match=r"adaptive_max_pool1d: expected input \(N, C, L\) or \(C, L\)"):
        F.adaptive_max_pool1d(img, 2)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(img)
    with pytest.raises(ValueError, match="mode 'bilinear' takes inputs with 4 dims"):
        F.interpolate(nerve.randn(1, 2, 5), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners only applies"):
        F.interpolate(img, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(img, scale_factor=2, mode="area")
