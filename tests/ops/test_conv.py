"""The convolution faces (Conv, ConvTranspose, ConvWeight; 1-d and 2-d) through the op table: forward against
plain nested-loop NumPy references, gradcheck and gradgradcheck in float64, both rule paths, the poisoned
namespace. Then what the table cannot see: gradients against the loop references, the chunked im2col, memory
layouts, and the errors."""
import itertools

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve.ops import conv as C
from nerve.ops import streams
from tests.helpers import T
from tests.ops.table import Case, table_tests

RNG = np.random.default_rng(7)


# --- nested-loop references ------------------------------------------------------------------------
def _window(pos, kernel, stride, dilation):
    return tuple(slice(p * s, p * s + d * (k - 1) + 1, d) for p, k, s, d in zip(pos, kernel, stride, dilation))


def ref_conv(x, w, b, stride, lo, hi, dilation, groups):
    """out[n, o, p] = b[o] + sum over the window of x_padded[n, group of o, p * s + k * d] w[o, c, k]."""
    nsp = x.ndim - 2
    xpad = np.pad(x, [(0, 0), (0, 0)] + list(zip(lo, hi)))
    out_ch, cg, kernel = w.shape[0], w.shape[1], w.shape[2:]
    og = out_ch // groups
    size = [(xpad.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(nsp)]
    out = np.zeros((x.shape[0], out_ch, *size))
    for n in range(x.shape[0]):
        for o in range(out_ch):
            g = o // og
            for pos in itertools.product(*map(range, size)):
                patch = xpad[(n, slice(g * cg, (g + 1) * cg)) + _window(pos, kernel, stride, dilation)]
                out[(n, o) + pos] = (patch * w[o]).sum() + (0.0 if b is None else b[o])
    return out


def ref_conv_grads(x, w, g, stride, lo, hi, dilation, groups):
    """(dx, dw, db) of ref_conv by the same loops: each output spreads g * w into its window of x."""
    xpad = np.pad(x, [(0, 0), (0, 0)] + list(zip(lo, hi)))
    dxpad, dw = np.zeros_like(xpad), np.zeros_like(w)
    out_ch, cg, kernel = w.shape[0], w.shape[1], w.shape[2:]
    og = out_ch // groups
    for n in range(x.shape[0]):
        for o in range(out_ch):
            grp = slice((o // og) * cg, (o // og + 1) * cg)
            for pos in itertools.product(*map(range, g.shape[2:])):
                where = (n, grp) + _window(pos, kernel, stride, dilation)
                dxpad[where] += g[(n, o) + pos] * w[o]
                dw[o] += g[(n, o) + pos] * xpad[where]
    crop = (slice(None), slice(None)) + tuple(slice(a, a + s) for a, s in zip(lo, x.shape[2:]))
    return dxpad[crop], dw, g.sum(axis=(0,) + tuple(range(2, g.ndim)))


def ref_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation):
    """Each input value scatters x * w[c_in] into its output window; the padding is then cropped."""
    nsp = x.ndim - 2
    cin_g, cout_g, kernel = x.shape[1] // groups, w.shape[1], w.shape[2:]
    full = [(s - 1) * st + d * (k - 1) + 1 + e for s, st, d, k, e in
            zip(x.shape[2:], stride, dilation, kernel, output_padding)]
    buf = np.zeros((x.shape[0], cout_g * groups, *full))
    for n in range(x.shape[0]):
        for ci in range(x.shape[1]):
            block = slice((ci // cin_g) * cout_g, (ci // cin_g + 1) * cout_g)
            for pos in itertools.product(*map(range, x.shape[2:])):
                buf[(n, block) + _window(pos, kernel, stride, dilation)] += x[(n, ci) + pos] * w[ci]
    size = [f - 2 * p for f, p in zip(full, padding)]
    out = buf[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(padding, size))]
    return out + (0.0 if b is None else b.reshape((-1,) + (1,) * nsp))


def _padding_pairs(padding, kernel, dilation):
    if padding == "valid":
        return [0] * len(kernel), [0] * len(kernel)
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [t // 2 for t in total], [t - t // 2 for t in total]
    pad = list(padding) if isinstance(padding, tuple) else [padding] * len(kernel)
    return pad, pad


def _tup(v, n):
    return tuple(v) if isinstance(v, tuple) else (v,) * n


# --- the grid --------------------------------------------------------------------------------------
#: (x shape, w shape, stride, padding, dilation, groups, bias)
CONV2D = [
    ((2, 3, 7, 6), (4, 3, 3, 2), 1, 0, 1, 1, True),          # non-square kernel, odd sizes
    ((1, 2, 5, 5), (3, 2, 3, 3), 2, 1, 1, 1, True),           # batch 1, stride 2, padding
    ((2, 4, 8, 7), (4, 2, 3, 3), 1, "same", 2, 2, True),     # groups, "same", dilation
    ((2, 4, 6, 6), (4, 1, 3, 3), 1, 1, 1, 4, False),         # depthwise, no bias
    ((2, 3, 9, 8), (2, 3, 2, 3), (2, 3), (1, 2), (2, 1), 1, True),  # per-dim stride/padding/dilation
    ((1, 2, 4, 5), (3, 2, 1, 1), 1, 0, 1, 1, True),           # 1x1 (pointwise path)
    ((2, 2, 5, 4), (2, 2, 4, 3), 1, "same", 1, 1, True),     # "same" with an even kernel (asymmetric)
    ((3, 1, 7, 7), (2, 1, 3, 3), 3, "valid", 1, 1, True),    # stride leaves input positions unused
    ((2, 6, 5, 5), (6, 2, 3, 3), 1, 1, 1, 3, True),          # groups with 2 outputs per group
    ((1, 6, 5, 5), (3, 6, 2, 2), 1, 1, 1, 1, True),          # channel-major im2col rows (C > 4)
    ((2, 5, 6, 7), (3, 5, 3, 2), 1, (2, 1), (1, 2), 1, True),  # shifted-row input gradient: padding, dilation
    ((1, 5, 6, 5), (4, 5, 4, 3), 1, "same", 1, 1, False),    # shifted rows, asymmetric "same" padding
    ((3, 2, 1, 1), (4, 2, 3, 3), 1, 1, 1, 1, True),           # 1x1 images, 3x3 kernel on the padding
    ((3, 6, 1, 1), (5, 6, 1, 1), 1, 0, 1, 1, True),           # 1x1 images, 1x1 kernel (pointwise)
]
CONV1D = [
    ((2, 3, 9), (4, 3, 3), 1, 1, 1, 1, True),
    ((1, 2, 11), (4, 1, 4), 1, "same", 2, 2, False),
    ((2, 2, 10), (2, 2, 5), 3, 2, 1, 1, True),
    ((2, 5, 9), (3, 5, 3), 1, 2, 2, 1, True),                 # shifted-row input gradient in 1-d
]
#: (x shape, w shape, stride, padding, output_padding, groups, dilation)
CONV_T = [
    ((2, 3, 3, 4), (3, 2, 3, 3), 1, 0, 0, 1, 1),
    ((1, 2, 3, 3), (2, 3, 3, 2), 2, 1, 1, 1, 1),             # upsampling x2 with output_padding
    ((2, 4, 2, 3), (4, 1, 3, 3), 3, 2, 2, 2, 1),             # groups, large output_padding
    ((1, 2, 3, 3), (2, 2, 2, 3), (2, 1), (0, 1), (1, 0), 1, (2, 2)),  # dilation, per-dim
    ((2, 2, 3, 3), (2, 2, 3, 3), 1, 1, 1, 1, 2),             # output_padding < dilation (stride 1)
    ((2, 3, 3, 4), (3, 5, 3, 3), 1, 1, 1, 1, 2),             # the same with 5 outputs: shifted rows, cropped end
]
CONV_T1D = [((2, 3, 4), (3, 2, 3), 2, 1, 1, 1, 1)]
#: ConvWeight on its own: (x shape, y shape, kernel, stride, padding, dilation, groups)
CONV_W = [
    ((1, 2, 4, 4), (1, 3, 5, 5), (2, 2), 1, 1, 1, 1),
    ((2, 4, 5, 6), (2, 4, 3, 2), (3, 3), 2, 1, (1, 2), 2),
    ((2, 3, 7), (2, 4, 5), (3,), 1, 0, 1, 1),
]


def _conv_case(dim, i, case):
    xs, ws, stride, padding, dilation, groups, bias = case
    conv = F.conv1d if dim == 1 else F.conv2d
    lo, hi = _padding_pairs(padding, ws[2:], _tup(dilation, dim))
    ref_args = (_tup(stride, dim), lo, hi, _tup(dilation, dim), groups)
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    return Case(f"conv{dim}d[{i}]",
                lambda x, w, b=None: conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups),
                lambda x, w, b=None: ref_conv(x, w, b, *ref_args), shapes, second=True, rtol=1e-10, atol=1e-12)


def _transpose_case(dim, i, case):
    xs, ws, stride, padding, extra, groups, dilation = case
    conv_t = F.conv_transpose1d if dim == 1 else F.conv_transpose2d
    return Case(f"conv_transpose{dim}d[{i}]",
                lambda x, w, b: conv_t(x, w, b, stride, padding, extra, groups, dilation),
                lambda x, w, b: ref_conv_transpose(x, w, b, _tup(stride, dim), _tup(padding, dim),
                                                   _tup(extra, dim), groups, _tup(dilation, dim)),
                [xs, ws, (ws[1] * groups,)], second=True, rtol=1e-10, atol=1e-12)


def _weight_case(i, case):
    xs, ys, kernel, stride, padding, dilation, groups = case
    geom = C.conv_geometry("test", xs[2:], kernel, stride, padding, dilation, groups)
    w_shape = (ys[1], xs[1] // groups) + tuple(kernel)
    lo, hi = list(geom.lo), list(geom.hi)

    def ref(x, y):
        return ref_conv_grads(x, np.zeros(w_shape), y, geom.stride, lo, hi, geom.dilation, groups)[1]
    return Case(f"conv_weight[{i}]", lambda x, y: C.ConvWeight.apply(x, y, geom), ref, [xs, ys], second=True,
                rtol=1e-10, atol=1e-12)


def _cases():
    for i, case in enumerate(CONV2D):
        yield _conv_case(2, i, case)
    for i, case in enumerate(CONV1D):
        yield _conv_case(1, i, case)
    for i, case in enumerate(CONV_T):
        yield _transpose_case(2, i, case)
    for i, case in enumerate(CONV_T1D):
        yield _transpose_case(1, i, case)
    for i, case in enumerate(CONV_W):
        yield _weight_case(i, case)
    yield Case("conv2d_unbatched", lambda x, w: F.conv2d(x, w, padding=1),
               lambda x, w: ref_conv(x[None], w, None, (1, 1), (1, 1), (1, 1), (1, 1), 1)[0],
               [(2, 4, 3), (3, 2, 3, 3)], second=True, rtol=1e-10, atol=1e-12)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


# --- gradients against the loop references -----------------------------------------------------------
@pytest.mark.parametrize("parts", [1, 2, "threads"])
@pytest.mark.parametrize("dim,case", [(2, c) for c in CONV2D] + [(1, c) for c in CONV1D],
                         ids=[f"2d-{i}" for i in range(len(CONV2D))] + [f"1d-{i}" for i in range(len(CONV1D))])
def test_conv_gradients_match_loop_reference(dim, case, parts, monkeypatch):
    """Forward and the three gradients against the loops, the batch run as one part, as two streams, or on
    nerve's own threads (streams.set_threads(2), every size split)."""
    if parts == "threads":
        monkeypatch.setattr(streams, "MIN_FLOPS", 0)
        monkeypatch.setattr(streams, "SPLIT_FLOPS", 0)
        streams.set_threads(2)
    else:
        monkeypatch.setattr(streams, "STREAMS", parts)
    try:
        _check_against_loops(dim, case)
    finally:
        streams.set_threads(None)


def _check_against_loops(dim, case):
    xs, ws, stride, padding, dilation, groups, bias = case
    x, w = T(RNG.standard_normal(xs), True), T(RNG.standard_normal(ws), True)
    b = T(RNG.standard_normal(ws[0]), True) if bias else None
    inputs = [x, w] + ([b] if b is not None else [])
    conv = F.conv1d if dim == 1 else F.conv2d
    out = conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = RNG.standard_normal(out.shape)
    lo, hi = _padding_pairs(padding, ws[2:], _tup(dilation, dim))
    want = ref_conv_grads(x.numpy(), w.numpy(), g, _tup(stride, dim), lo, hi, _tup(dilation, dim), groups)
    np.testing.assert_allclose(out.numpy(), ref_conv(x.numpy(), w.numpy(), None if b is None else b.numpy(),
                                                     _tup(stride, dim), lo, hi, _tup(dilation, dim), groups),
                               rtol=1e-10, atol=1e-12)
    for got, ref in zip(nerve.grad(out, inputs, nerve.tensor(g)), want):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONV_T, ids=[f"t{i}" for i in range(len(CONV_T))])
def test_conv_transpose_input_gradient_is_the_convolution_it_transposes(case):
    xs, ws, stride, padding, extra, groups, dilation = case
    x, w = T(RNG.standard_normal(xs), True), T(RNG.standard_normal(ws))
    out = F.conv_transpose2d(x, w, None, stride, padding, extra, groups, dilation)
    g = RNG.standard_normal(out.shape)
    gx = nerve.grad(out, x, nerve.tensor(g))[0]
    p = _tup(padding, 2)
    hi = [a - e for a, e in zip(p, _tup(extra, 2))]  # output_padding crops the end of the conv's input
    cropped = g[(slice(None), slice(None)) + tuple(slice(0, s + min(h, 0)) for s, h in zip(g.shape[2:], hi))]
    want = ref_conv(cropped, w.numpy(), None, _tup(stride, 2), p, [max(h, 0) for h in hi], _tup(dilation, 2),
                    groups)
    np.testing.assert_allclose(gx.numpy(), want, rtol=1e-10, atol=1e-12)


# --- kernels and layouts ------------------------------------------------------------------------------
def test_chunked_im2col_equals_one_chunk(monkeypatch):
    """Forward, weight and input gradients are the same when im2col runs one image at a time."""
    x, w, b = (T(RNG.standard_normal(s), True) for s in ((5, 4, 6, 7), (6, 2, 3, 3), (6,)))

    def run():
        out = F.conv2d(x, w, b, stride=(1, 2), padding=1, groups=2)
        return [out.numpy()] + [g.numpy() for g in nerve.grad(out, [x, w, b], nerve.tensor(np.ones(out.shape)))]
    whole = run()
    monkeypatch.setattr(C, "CHUNK_BYTES", 1)
    for a, b_ in zip(whole, run()):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [0, 1])
def test_channels_first_and_channels_last_inputs_agree(padding):
    """Inputs in either memory layout (many channels: the blocked transposing copy) give the same results."""
    data = RNG.standard_normal((2, 20, 5, 6))
    first = T(data, True)
    last = nerve.tensor(np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2), requires_grad=True)
    w = T(RNG.standard_normal((3, 20, 3, 3)))
    a, b = F.conv2d(first, w, padding=padding), F.conv2d(last, w, padding=padding)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    g = nerve.tensor(RNG.standard_normal(a.shape))
    np.testing.assert_allclose(nerve.grad(a, first, g)[0].numpy(), nerve.grad(b, last, g)[0].numpy(), rtol=1e-12)


def test_gradient_in_either_layout_gives_the_same_faces():
    """The rule reads the output gradient in one layout for all three faces, whichever layout it comes in."""
    x, w, b = T(RNG.standard_normal((2, 6, 5, 5)), True), T(RNG.standard_normal((8, 6, 3, 3)), True), \
        T(RNG.standard_normal(8), True)
    g = RNG.standard_normal((2, 8, 5, 5))
    g_last = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for create_graph in (False, True):
        got = [nerve.grad(F.conv2d(x, w, b, padding=1), [x, w, b], nerve.tensor(v), create_graph=create_graph)
               for v in (g, g_last)]
        for u, v in zip(*got):
            np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-12, atol=1e-12)


def test_output_is_channels_last_view_and_float32():
    """The GEMM writes channels-last memory; the tensor keeps PyTorch's (N, C, H, W) shape."""
    x = nerve.randn(2, 3, 8, 8)
    out = F.conv2d(x, nerve.randn(5, 3, 3, 3))
    assert out.shape == (2, 5, 6, 6) and out.dtype == np.float32
    assert out.data.transpose(0, 2, 3, 1).flags.c_contiguous
    assert F.conv2d(out, nerve.randn(4, 5, 1, 1)).shape == (2, 4, 6, 6)


def test_empty_batch():
    x, w, b = nerve.zeros(0, 3, 5, 5, requires_grad=True), nerve.randn(4, 3, 3, 3, requires_grad=True), \
        nerve.randn(4, requires_grad=True)
    out = F.conv2d(x, w, b, padding=1)
    assert out.shape == (0, 4, 5, 5)
    gx, gw, gb = nerve.grad(out.sum(), [x, w, b])
    assert gx.shape == (0, 3, 5, 5) and not gw.numpy().any() and not gb.numpy().any()


def test_errors_name_the_op_and_shapes():
    """Shape mismatches raise nerve.ShapeError (a RuntimeError as in PyTorch, and a ValueError as before)."""
    with pytest.raises(RuntimeError, match=r"conv2d: input of spatial size \(2, 2\).*smaller than the kernel \(3, 3\)"):
        F.conv2d(nerve.randn(1, 1, 2, 2), nerve.randn(2, 1, 3, 3))
    with pytest.raises(RuntimeError, match=r"conv2d: expected input \(N, 6, H, W\) for weight \(4, 3, 3, 3\)"):
        F.conv2d(nerve.randn(1, 3, 5, 5), nerve.randn(4, 3, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: expected input \(N, 6, H, W\)"):
        F.conv2d(nerve.randn(1, 3, 5, 5), nerve.randn(4, 3, 3, 3), groups=2)
    with pytest.raises(RuntimeError, match=r"conv2d: bias must have shape \(4,\)"):
        F.conv2d(nerve.randn(1, 3, 5, 5), nerve.randn(4, 3, 3, 3), nerve.randn(3))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(nerve.randn(1, 3, 5, 5), nerve.randn(4, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(nerve.randn(1, 2, 3, 3), nerve.randn(2, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(TypeError, match=r"conv1d: stride must be an int or a tuple of 1 ints"):
        F.conv1d(nerve.randn(1, 2, 5), nerve.randn(3, 2, 2), stride=None)
