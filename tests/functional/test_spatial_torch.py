"""PyTorch's spatial functions added for ported code: ``F.pad`` with negative widths (cropping) in every mode,
``interpolate(mode="nearest-exact")`` and ``max_unpool1d/2d/3d``, through the op table against NumPy references
(gradcheck and gradgradcheck in float64, both rule paths, the poisoned namespace), values PyTorch gives, errors."""
import itertools

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from tests.helpers import T
from tests.ops.table import Case, table_tests

RNG = np.random.default_rng(23)
NP_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --- references --------------------------------------------------------------------------------------------
def ref_pad(x, widths, mode):
    """Per dim, one output position at a time: output j reads input j - left, mirrored (reflect) or clamped
    (replicate) into the input; circular crops by the negative widths first and wraps within what is left."""
    out = x
    for i in range(len(widths) // 2):
        dim, lo, hi = x.ndim - 1 - i, widths[2 * i], widths[2 * i + 1]
        n = out.shape[dim]
        if mode in ("constant", "circular"):
            cropped = np.take(out, range(max(-lo, 0), n - max(-hi, 0)), axis=dim)
            pairs = [(0, 0)] * x.ndim
            pairs[dim] = (max(lo, 0), max(hi, 0))
            out = np.pad(cropped, pairs, mode=NP_MODES[mode])
            continue
        src = []
        for j in range(n + lo + hi):
            p = j - lo
            if mode == "reflect":
                p = -p if p < 0 else (2 * (n - 1) - p if p >= n else p)
            src.append(min(max(p, 0), n - 1))
        out = np.take(out, src, axis=dim)
    return out


def ref_nearest_exact(x, size):
    """out[i] = x[min(floor((i + 0.5) * in / out), in - 1)] along each spatial dim."""
    out = np.zeros(x.shape[:2] + tuple(size))
    for pos in itertools.product(*map(range, size)):
        src = tuple(min(int(np.floor((i + 0.5) * s / o)), s - 1) for i, s, o in zip(pos, x.shape[2:], size))
        out[(slice(None), slice(None)) + pos] = x[(slice(None), slice(None)) + src]
    return out


def ref_unpool(x, idx, size):
    """Zeros of the output size with each x value written at its flat plane index."""
    out = np.zeros(x.shape[:2] + tuple(size))
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        plane = out[n, c].reshape(-1)
        for value, i in zip(x[n, c].ravel(), idx[n, c].ravel()):
            plane[i] = value
    return out


# --- the op table --------------------------------------------------------------------------------------------
MODES = ("constant", "reflect", "replicate", "circular")
#: (input shape, widths, modes): the last pads 3 beside a crop that leaves 2, which circular refuses
PAD_CASES = [((2, 3, 6), (-1, 2), MODES), ((2, 3, 6), (2, -1), MODES), ((1, 2, 5, 6), (-2, 1, 1, -1), MODES),
             ((1, 1, 4, 5, 6), (3, -2, -1, 0, 0, -1), MODES), ((1, 2, 6), (3, -4), MODES[:3])]
#: (input shape, output size)
EXACT_CASES = [((1, 2, 5), (8,)), ((2, 1, 6, 4), (4, 7)), ((1, 1, 3, 4, 5), (5, 3, 7))]


def _unpool_inputs(shape, kernel, stride):
    """A max_pool's output and indices (distinct positions) as fixed inputs, and the unpooled size."""
    x = RNG.standard_normal(shape)
    n = len(shape) - 2
    out, idx = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[n - 1](T(x), kernel, stride, return_indices=True)
    return out.numpy(), idx.numpy(), shape[2:]


UNPOOL = {n: _unpool_inputs(shape, 2, 2) for n, shape in ((1, (2, 2, 6)), (2, (1, 2, 4, 6)), (3, (1, 1, 4, 2, 4)))}


def _cases():
    for shape, widths, modes in PAD_CASES:
        for mode in modes:
            yield Case(f"pad_{mode}{widths}", lambda x, w=widths, m=mode: F.pad(x, w, mode=m),
                       lambda x, w=widths, m=mode: ref_pad(x, w, m), [shape], second=True)
    for shape, size in EXACT_CASES:
        yield Case(f"nearest_exact{size}", lambda x, s=size: F.interpolate(x, size=s, mode="nearest-exact"),
                   lambda x, s=size: ref_nearest_exact(x, s), [shape], second=True)
    for n, (pooled, idx, size) in UNPOOL.items():
        unpool = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[n - 1]
        yield Case(f"max_unpool{n}d", lambda x, i=idx, u=unpool: u(x, nerve.tensor(i), 2),
                   lambda x, i=idx, s=size: ref_unpool(x, i, s), [pooled.shape], second=True)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


# --- PyTorch's values, behaviour, errors ---------------------------------------------------------------------
#: F.pad(torch.arange(6.).reshape(1, 1, 6), widths, mode) printed by torch 2.14.1
TORCH_PADS = {
    ("reflect", (-1, 2)): [1, 2, 3, 4, 5, 4, 3], ("reflect", (3, -2)): [3, 2, 1, 0, 1, 2, 3],
    ("replicate", (2, -1)): [0, 0, 0, 1, 2, 3, 4], ("replicate", (-2, -1)): [2, 3, 4],
    ("circular", (-1, 2)): [1, 2, 3, 4, 5, 1, 2], ("circular", (2, -1)): [3, 4, 0, 1, 2, 3, 4],
    ("circular", (3, -2)): [1, 2, 3, 0, 1, 2, 3], ("reflect", (4, -3)): [4, 3, 2, 1, 0, 1, 2],
    ("reflect", (-6, 2)): [4, 3], ("reflect", (3, -5)): [3, 2, 1, 0], ("reflect", (-3, 5)): [3, 4, 5, 4, 3, 2, 1, 0],
    ("replicate", (6, -1)): [0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], ("replicate", (-6, 2)): [5, 5],
    ("replicate", (-2, 6)): [2, 3, 4, 5, 5, 5, 5, 5, 5, 5],
}


@pytest.mark.parametrize("key", list(TORCH_PADS), ids=str)
def test_negative_padding_gives_pytorchs_values(key):
    mode, widths = key
    out = F.pad(nerve.arange(6.0).reshape(1, 1, 6), widths, mode=mode)
    np.testing.assert_array_equal(out.numpy().ravel(), TORCH_PADS[key])


def test_padding_errors_follow_pytorchs_limits():
    with pytest.raises(ValueError, match=r"pad: reflect padding \(6, -1\) of dim 2 \(size 6\).*smaller than the size"):
        F.pad(nerve.randn(1, 1, 6), (6, -1), mode="reflect")
    with pytest.raises(ValueError, match=r"pad: circular padding \(4, -3\) of dim 2 \(size 6, 3 after cropping\)"):
        F.pad(nerve.randn(1, 1, 6), (4, -3), mode="circular")
    with pytest.raises(ValueError, match=r"pad: replicate padding \(-4, -3\) of dim 2 \(size 6\).*crops more than"):
        F.pad(nerve.randn(1, 1, 6), (-4, -3), mode="replicate")
    for mode in MODES:  # cropped to nothing: an empty dim, as PyTorch's circular mode gives
        x = nerve.randn(1, 2, 6, requires_grad=True)
        out = F.pad(x, (-3, -3), mode=mode)
        assert out.shape == (1, 2, 0)
        assert not nerve.grad(out.sum(), x)[0].numpy().any()


def test_nearest_exact_differs_from_nearest_as_in_pytorch():
    """Downsampling 4 -> 3: "nearest" takes sources floor(i * 4/3) = 0, 1, 2; "nearest-exact" floor((i + .5) 4/3)
    = 0, 2, 3 (PyTorch's values for both)."""
    x = nerve.arange(4.0).reshape(1, 1, 4)
    assert F.interpolate(x, size=3, mode="nearest").numpy().ravel().tolist() == [0, 1, 2]
    assert F.interpolate(x, size=3, mode="nearest-exact").numpy().ravel().tolist() == [0, 2, 3]
    assert F.interpolate(x, scale_factor=2, mode="nearest-exact").numpy().ravel().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="align_corners only applies to the linear modes"):
        F.interpolate(x, size=3, mode="nearest-exact", align_corners=False)


def test_max_unpool2d_inverts_max_pool2d_with_padding_and_output_size():
    x = T(RNG.standard_normal((2, 3, 7, 5)))
    out, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    back = nn.MaxUnpool2d(3, 2, 1)(out, idx, output_size=x.shape)
    assert back.shape == x.shape
    np.testing.assert_array_equal(back.numpy(), ref_unpool(out.numpy(), idx.numpy(), (7, 5)))
    assert F.max_unpool2d(out, idx, 3, 2, 1).shape == (2, 3, 7, 5)  # (4 - 1) 2 - 2 + 3, (3 - 1) 2 - 2 + 3
    single = F.max_unpool2d(out[0], idx[0], 3, 2, 1, output_size=(7, 5))
    np.testing.assert_array_equal(single.numpy(), back.numpy()[0])


def test_max_unpool_errors():
    out, idx = F.max_pool2d(nerve.randn(1, 2, 4, 4), 2, return_indices=True)
    with pytest.raises(RuntimeError, match=r"max_unpool2d: indices must be integers of the input's shape"):
        F.max_unpool2d(out, idx[:, :1], 2)
    with pytest.raises(ValueError, match=r"max_unpool2d: output_size \(9, 4\) must be within the stride"):
        F.max_unpool2d(out, idx, 2, output_size=(9, 4))
    with pytest.raises(RuntimeError, match=r"max_unpool2d: indices must lie in \[0, 9\)"):
        F.max_unpool2d(out, idx, 2, output_size=(3, 3))
