"""Convolutions (Conv1d/2d, ConvTranspose1d/2d), BatchNorm2d, Dropout2d and the CNN models.

Forward and backward are compared with plain nested-loop NumPy references over a grid of configurations,
checked with gradcheck in float64 (second order for a subset), and both backward paths (raw vjp and
Tensor-op backward) must agree. Layers: shapes, parameters, init, state dicts, errors, a small task.
"""
import itertools
import math

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.models import CNN1d, LeNet5, SmallCNN
from nerve.ops import conv as C

RNG = np.random.default_rng(7)


def T(a, requires_grad=True):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


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
    ((1, 2, 5, 5), (3, 2, 3, 3), 2, 1, 1, 1, True),          # batch 1, stride 2, padding
    ((2, 4, 8, 7), (4, 2, 3, 3), 1, "same", 2, 2, True),     # groups, "same", dilation
    ((2, 4, 6, 6), (4, 1, 3, 3), 1, 1, 1, 4, False),         # depthwise, no bias
    ((2, 3, 9, 8), (2, 3, 2, 3), (2, 3), (1, 2), (2, 1), 1, True),  # per-dim stride/padding/dilation
    ((1, 2, 4, 5), (3, 2, 1, 1), 1, 0, 1, 1, True),          # 1x1 (pointwise path)
    ((2, 2, 5, 4), (2, 2, 4, 3), 1, "same", 1, 1, True),     # "same" with an even kernel (asymmetric)
    ((3, 1, 7, 7), (2, 1, 3, 3), 3, "valid", 1, 1, True),    # stride leaves input positions unused
    ((2, 6, 5, 5), (6, 2, 3, 3), 1, 1, 1, 3, True),          # groups with 2 outputs per group
    ((1, 6, 5, 5), (3, 6, 2, 2), 1, 1, 1, 1, True),          # channel-major im2col rows (C > 4)
    ((2, 5, 6, 7), (3, 5, 3, 2), 1, (2, 1), (1, 2), 1, True),  # shifted-row input gradient: padding, dilation
    ((1, 5, 6, 5), (4, 5, 4, 3), 1, "same", 1, 1, False),    # shifted rows, asymmetric "same" padding
]
CONV1D = [
    ((2, 3, 9), (4, 3, 3), 1, 1, 1, 1, True),
    ((1, 2, 11), (4, 1, 4), 1, "same", 2, 2, False),
    ((2, 2, 10), (2, 2, 5), 3, 2, 1, 1, True),
    ((2, 5, 9), (3, 5, 3), 1, 2, 2, 1, True),                # shifted-row input gradient in 1-d
]


def _conv_case(case, dim):
    xs, ws, stride, padding, dilation, groups, bias = case
    x, w = T(RNG.standard_normal(xs)), T(RNG.standard_normal(ws))
    b = T(RNG.standard_normal(ws[0])) if bias else None
    fn = F.conv1d if dim == 1 else F.conv2d
    lo, hi = _padding_pairs(padding, ws[2:], _tup(dilation, dim))
    ref_args = (_tup(stride, dim), lo, hi, _tup(dilation, dim), groups)
    return x, w, b, (lambda *a: fn(*a, stride=stride, padding=padding, dilation=dilation, groups=groups)), ref_args


@pytest.mark.parametrize("dim,case", [(2, c) for c in CONV2D] + [(1, c) for c in CONV1D],
                         ids=[f"2d-{i}" for i in range(len(CONV2D))] + [f"1d-{i}" for i in range(len(CONV1D))])
def test_conv_matches_loop_reference_and_gradcheck(dim, case):
    x, w, b, fn, ref_args = _conv_case(case, dim)
    inputs = [x, w] + ([b] if b is not None else [])
    out = fn(*inputs)
    want = ref_conv(x.numpy(), w.numpy(), None if b is None else b.numpy(), *ref_args)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    g = RNG.standard_normal(out.shape)
    grads = nerve.grad(out, inputs, nerve.tensor(g))
    dx, dw, db = ref_conv_grads(x.numpy(), w.numpy(), g, *ref_args)
    for got, ref in zip(grads, (dx, dw, db)):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)
    graph = nerve.grad(fn(*inputs), inputs, nerve.tensor(g), create_graph=True)
    for fast, slow in zip(grads, graph):
        np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-12, atol=1e-12)
    assert nerve.gradcheck(fn, inputs)


@pytest.mark.parametrize("case", [CONV2D[1], CONV2D[3], CONV1D[1]], ids=["stride2", "depthwise", "1d-same"])
def test_conv_second_order(case):
    xs, ws = case[0], case[1]
    small = ((1,) + xs[1:2] + tuple(min(s, 5) for s in xs[2:]), ws)
    x, w, b, fn, _ = _conv_case(small + case[2:], len(xs) - 2)
    assert nerve.gradgradcheck(fn, [x, w] + ([b] if b is not None else []))


#: (x shape, w shape, stride, padding, output_padding, groups, dilation)
CONV_T = [
    ((2, 3, 3, 4), (3, 2, 3, 3), 1, 0, 0, 1, 1),
    ((1, 2, 3, 3), (2, 3, 3, 2), 2, 1, 1, 1, 1),             # upsampling x2 with output_padding
    ((2, 4, 2, 3), (4, 1, 3, 3), 3, 2, 2, 2, 1),             # groups, large output_padding
    ((1, 2, 3, 3), (2, 2, 2, 3), (2, 1), (0, 1), (1, 0), 1, (2, 2)),  # dilation, per-dim
    ((2, 2, 3, 3), (2, 2, 3, 3), 1, 1, 1, 1, 2),             # output_padding < dilation (stride 1)
    ((2, 3, 3, 4), (3, 5, 3, 3), 1, 1, 1, 1, 2),             # the same with 5 outputs: shifted rows, cropped end
]


@pytest.mark.parametrize("case", CONV_T, ids=[f"t{i}" for i in range(len(CONV_T))])
def test_conv_transpose2d_matches_reference_and_gradcheck(case):
    xs, ws, stride, padding, extra, groups, dilation = case
    x, w, b = T(RNG.standard_normal(xs)), T(RNG.standard_normal(ws)), T(RNG.standard_normal(ws[1] * groups))

    def fn(x, w, b):
        return F.conv_transpose2d(x, w, b, stride, padding, extra, groups, dilation)
    out = fn(x, w, b)
    want = ref_conv_transpose(x.numpy(), w.numpy(), b.numpy(), _tup(stride, 2), _tup(padding, 2),
                              _tup(extra, 2), groups, _tup(dilation, 2))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    # its input gradient is the convolution it transposes
    g = RNG.standard_normal(out.shape)
    gx = nerve.grad(fn(x, w, b), x, nerve.tensor(g))[0]
    p = _tup(padding, 2)
    hi = [a - e for a, e in zip(p, _tup(extra, 2))]  # output_padding crops the end of the conv's input
    cropped = g[(slice(None), slice(None)) + tuple(slice(0, s + min(h, 0)) for s, h in zip(g.shape[2:], hi))]
    want_gx = ref_conv(cropped, w.numpy(), None, _tup(stride, 2), p, [max(h, 0) for h in hi], _tup(dilation, 2),
                       groups)
    np.testing.assert_allclose(gx.numpy(), want_gx, rtol=1e-10, atol=1e-12)
    assert nerve.gradcheck(fn, [x, w, b])


def test_conv_transpose_second_order_and_1d():
    x, w = T(RNG.standard_normal((1, 2, 3, 2))), T(RNG.standard_normal((2, 1, 2, 2)))
    assert nerve.gradgradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1), [x, w])
    x1, w1 = T(RNG.standard_normal((2, 3, 4))), T(RNG.standard_normal((3, 2, 3)))
    out = F.conv_transpose1d(x1, w1, None, 2, 1, 1)
    want = ref_conv_transpose(x1.numpy(), w1.numpy(), None, (2,), (1,), (1,), 1, (1,))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    assert nerve.gradcheck(lambda x, w: F.conv_transpose1d(x, w, None, 2, 1, 1), [x1, w1])


def test_weight_gradient_face_second_order():
    """ConvWeight (the weight gradient as an op) differentiates in both of its inputs."""
    geom = C.conv_geometry("t", (4, 4), (2, 2), 1, 1, 1, 1)
    x, y = T(RNG.standard_normal((1, 2, 4, 4))), T(RNG.standard_normal((1, 3, 5, 5)))
    fn = lambda x, y: C.ConvWeight.apply(x, y, geom)  # noqa: E731
    assert nerve.gradcheck(fn, [x, y])
    assert nerve.gradgradcheck(fn, [x, y])


def test_chunked_im2col_equals_one_chunk(monkeypatch):
    """Forward, weight and input gradients are the same when im2col runs one image at a time."""
    x, w, b = T(RNG.standard_normal((5, 4, 6, 7))), T(RNG.standard_normal((6, 2, 3, 3))), T(RNG.standard_normal(6))

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
    first = T(data)
    last = nerve.tensor(np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2), requires_grad=True)
    w = T(RNG.standard_normal((3, 20, 3, 3)))
    for fn in (lambda x: F.conv2d(x, w, padding=padding), lambda x: F.max_pool2d(x, 3, 2, padding),
               lambda x: F.avg_pool2d(x, 3, 1, padding)):
        a, b = fn(first), fn(last)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
        g = nerve.tensor(RNG.standard_normal(a.shape))
        np.testing.assert_allclose(nerve.grad(a, first, g)[0].numpy(), nerve.grad(b, last, g)[0].numpy(), rtol=1e-12)


def test_output_is_channels_last_view_and_float32():
    """The GEMM writes channels-last memory; the tensor keeps PyTorch's (N, C, H, W) shape."""
    x = nerve.randn(2, 3, 8, 8)
    out = F.conv2d(x, nerve.randn(5, 3, 3, 3))
    assert out.shape == (2, 5, 6, 6) and out.dtype == np.float32
    assert out.data.transpose(0, 2, 3, 1).flags.c_contiguous
    np.testing.assert_allclose(F.conv2d(out, nerve.randn(4, 5, 1, 1)).shape, (2, 4, 6, 6))


def test_empty_batch_and_unbatched_input():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = nerve.zeros(0, 3, 5, 5, requires_grad=True)
    out = conv(x)
    assert out.shape == (0, 4, 5, 5)
    out.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5) and conv.weight.grad.shape == (4, 3, 3, 3)
    single = nerve.randn(3, 5, 5)
    np.testing.assert_allclose(conv(single).numpy(), conv(single.unsqueeze(0)).numpy()[0], rtol=1e-6)


# --- padding modes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_padding_modes(mode, np_mode, padding):
    nerve.manual_seed(0)
    conv = nn.Conv2d(2, 3, (3, 2), padding=padding, padding_mode=mode).double()
    x = T(RNG.standard_normal((2, 2, 5, 4)))
    lo, hi = _padding_pairs(padding, (3, 2), (1, 1))
    xpad = np.pad(x.numpy(), [(0, 0), (0, 0)] + list(zip(lo, hi)), mode=np_mode)
    want = ref_conv(xpad, conv.weight.numpy(), conv.bias.numpy(), (1, 1), (0, 0), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(conv(x).numpy(), want, rtol=1e-10, atol=1e-12)
    assert nerve.gradcheck(lambda x: conv(x), [x])


def test_conv1d_padding_mode_and_pad_errors():
    conv = nn.Conv1d(1, 2, 3, padding=2, padding_mode="reflect").double()
    x = T(RNG.standard_normal((1, 1, 6)))
    xpad = np.pad(x.numpy(), [(0, 0), (0, 0), (2, 2)], mode="reflect")
    want = ref_conv(xpad, conv.weight.numpy(), conv.bias.numpy(), (1,), (0,), (0,), (1,), 1)
    np.testing.assert_allclose(conv(x).numpy(), want, rtol=1e-10)
    with pytest.raises(ValueError, match=r"pad: reflect padding \(3, 3\) of dim 2 \(size 3\)"):
        F.pad(nerve.randn(1, 1, 3), (3, 3), mode="reflect")
    with pytest.raises(ValueError, match="mode must be"):
        F.pad(nerve.randn(1, 1, 3), (1, 1), mode="mirror")


# --- layers --------------------------------------------------------------------------------------------
def test_conv2d_layer_shapes_parameters_init_and_state_dict():
    nerve.manual_seed(1)
    conv = nn.Conv2d(4, 6, (3, 5), stride=2, padding=(1, 2), groups=2)
    assert conv.weight.shape == (6, 2, 3, 5) and conv.bias.shape == (6,)
    assert sum(p.numel() for p in conv.parameters()) == 6 * 2 * 15 + 6
    bound = 1 / math.sqrt(2 * 15)  # kaiming_uniform(a=sqrt(5)) and the bias: both U(+-1/sqrt(fan_in))
    for p in (conv.weight, conv.bias):
        assert np.abs(p.numpy()).max() <= bound and np.abs(p.numpy()).max() > 0.8 * bound
    assert conv(nerve.randn(3, 4, 9, 10)).shape == (3, 6, 5, 5)
    assert set(conv.state_dict()) == {"weight", "bias"}
    other = nn.Conv2d(4, 6, (3, 5), stride=2, padding=(1, 2), groups=2)
    other.load_state_dict(conv.state_dict())
    x = nerve.randn(1, 4, 7, 7)
    np.testing.assert_array_equal(other(x).numpy(), conv(x).numpy())
    assert "Conv2d(4, 6, kernel_size=(3, 5), stride=(2, 2), padding=(1, 2), groups=2)" == repr(conv)
    assert nn.Conv2d(1, 2, 3, bias=False).bias is None


def test_conv_transpose_layer_shapes_and_output_size():
    up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
    assert up.weight.shape == (8, 4, 4, 4)
    x = nerve.randn(2, 8, 5, 5)
    assert up(x).shape == (2, 4, 10, 10)
    down = nn.Conv2d(4, 8, 3, stride=2, padding=1)
    assert down(nerve.randn(1, 4, 10, 10)).shape == (1, 8, 5, 5)
    up3 = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)
    assert up3(x).shape == (2, 4, 9, 9)
    assert up3(x, output_size=(10, 10)).shape == (2, 4, 10, 10)
    with pytest.raises(ValueError, match="output_size"):
        up3(x, output_size=(12, 12))
    assert nn.ConvTranspose1d(3, 2, 3, stride=2)(nerve.randn(1, 3, 4)).shape == (1, 2, 9)


def test_bad_inputs_name_the_layer_and_shapes():
    conv = nn.Conv2d(1, 32, 3)
    message = r"^Conv2d\(1 -> 32, k=3\): expected input \(N, 1, H, W\), got \(32, 28, 28\)$"
    with pytest.raises(ValueError, match=message):
        conv(nerve.randn(32, 28, 28))
    with pytest.raises(ValueError, match=r"Conv1d\(3 -> 4, k=5\): expected input \(N, 3, L\), got \(2, 3, 4, 5\)"):
        nn.Conv1d(3, 4, 5)(nerve.randn(2, 3, 4, 5))
    with pytest.raises(TypeError, match="dtype float64 but the weights are float32"):
        conv(nerve.randn(1, 1, 5, 5).double())
    with pytest.raises(ValueError, match=r"conv2d: input of spatial size \(2, 2\).*smaller than the kernel \(3, 3\)"):
        conv(nerve.randn(1, 1, 2, 2))
    with pytest.raises(ValueError, match="groups=2 must divide in_channels 3"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"conv2d: expected input \(N, 6, H, W\) for weight \(4, 3, 3, 3\)"):
        F.conv2d(nerve.randn(1, 3, 5, 5), nerve.randn(4, 3, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(4,\)"):
        F.conv2d(nerve.randn(1, 3, 5, 5), nerve.randn(4, 3, 3, 3), nerve.randn(3))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(nerve.randn(1, 2, 3, 3), nerve.randn(2, 2, 3, 3), stride=2, output_padding=2)


# --- BatchNorm2d and Dropout2d ----------------------------------------------------------------------------
def test_batchnorm2d_matches_reference_updates_stats_and_gradchecks():
    bn = nn.BatchNorm2d(3).double()
    x = RNG.standard_normal((4, 3, 5, 2)) * 3 + 1
    with nerve.no_grad():
        bn.weight.data[:] = [1.0, 2.0, -0.5]
        bn.bias.data[:] = [0.0, 1.0, 2.0]
    out = bn(T(x)).numpy()
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    want = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * bn.weight.numpy()[:, None, None] \
        + bn.bias.numpy()[:, None, None]
    np.testing.assert_allclose(out, want, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-10)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-10)
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    want_eval = (x - bn.running_mean.numpy()[:, None, None]) / np.sqrt(bn.running_var.numpy()[:, None, None] + 1e-5) \
        * bn.weight.numpy()[:, None, None] + bn.bias.numpy()[:, None, None]
    np.testing.assert_allclose(bn(T(x)).numpy(), want_eval, rtol=1e-10)
    bn.train()
    small = T(RNG.standard_normal((2, 3, 2, 2)))
    assert nerve.gradcheck(lambda x, w, b: bn(x), [small, bn.weight, bn.bias])
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected input \(N, 3, H, W\), got \(2, 3, 4\)"):
        bn(nerve.randn(2, 3, 4).double())
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(nerve.randn(1, 3, 1, 1).double())


def test_batchnorm2d_on_conv_output():
    """On a convolution's channels-last output the rows are free views; results equal a contiguous input."""
    conv, bn = nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)
    y = conv(nerve.randn(3, 2, 6, 6))
    np.testing.assert_allclose(bn(y).numpy(), nn.BatchNorm2d(4)(nerve.tensor(np.ascontiguousarray(y.numpy()))).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_dropout2d_drops_whole_channels():
    drop = nn.Dropout2d(0.5, generator=np.random.default_rng(0))
    x = nerve.ones(8, 16, 3, 3)
    out = drop(x).numpy()
    per_channel = out.reshape(8, 16, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()
    assert 0.3 < (per_channel[:, :, 0] == 0).mean() < 0.7
    drop.eval()
    assert drop(x) is x
    assert set(np.unique(nn.Dropout1d(0.5)(nerve.ones(4, 8, 5)).numpy().reshape(4, 8, 5).std(axis=2))) == {0.0}
    with pytest.raises(ValueError, match="Dropout2d: p must be in"):
        nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match=r"dropout2d: expected input \(N, C, H, W\)"):
        drop.train()
        drop(nerve.ones(2, 3))


# --- models and learning ------------------------------------------------------------------------------------
def test_models_shapes_and_parameter_counts():
    assert SmallCNN()(nerve.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in SmallCNN().parameters()) == 1_199_882  # PyTorch's MNIST example
    assert LeNet5()(nerve.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in LeNet5().parameters()) == 61_706  # LeCun et al.'s count
    assert LeNet5(activation="tanh", pool="avg")(nerve.randn(1, 1, 28, 28)).shape == (1, 10)
    assert CNN1d()(nerve.randn(3, 1, 40)).shape == (3, 10)
    assert sum(p.numel() for p in CNN1d().parameters()) == 5210
    assert SmallCNN(in_channels=3, num_classes=5, image_size=32)(nerve.randn(1, 3, 32, 32)).shape == (1, 5)
    assert SmallCNN().get_config() == {"in_channels": 1, "num_classes": 10, "image_size": 28}


def _bars(n, rng):
    """8x8 images of a horizontal bar, a vertical bar, a diagonal or an anti-diagonal, anywhere, with noise."""
    y = rng.integers(0, 4, n)
    x = rng.normal(0, 0.3, (n, 1, 8, 8))
    for i, (label, r, c) in enumerate(zip(y, rng.integers(1, 7, n), rng.integers(1, 7, n))):
        if label == 0:
            x[i, 0, r, max(c - 2, 0):c + 2] += 1
        elif label == 1:
            x[i, 0, max(r - 2, 0):r + 2, c] += 1
        else:
            for k in range(-1, 2):
                rr, cc = r + k, c + (k if label == 2 else -k)
                if 0 <= rr < 8 and 0 <= cc < 8:
                    x[i, 0, rr, cc] += 1
    return x.astype(np.float32), y


def test_small_cnn_learns_bar_orientations():
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    opt = nerve.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(70):
        xb, yb = _bars(64, rng)
        opt.zero_grad()
        loss_fn(model(nerve.tensor(xb)), nerve.tensor(yb)).backward()
        opt.step()
    model.eval()
    xt, yt = _bars(400, np.random.default_rng(1))
    accuracy = (model(nerve.tensor(xt)).numpy().argmax(1) == yt).mean()
    assert accuracy > 0.95, accuracy


def test_cnn1d_learns_bump_shapes():
    """Sequences holding a narrow or a wide bump somewhere: a 1-d CNN tells them apart."""
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)

    def data(n):
        y = rng.integers(0, 2, n)
        t = np.arange(40)
        centre = rng.integers(8, 32, n)[:, None]
        width = np.where(y == 0, 1.5, 5.0)[:, None]
        x = np.exp(-0.5 * ((t - centre) / width) ** 2) + rng.normal(0, 0.1, (n, 40))
        return x[:, None, :].astype(np.float32), y
    model = CNN1d(num_classes=2, channels=8)
    opt = nerve.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(100):
        xb, yb = data(64)
        opt.zero_grad()
        F.cross_entropy(model(nerve.tensor(xb)), nerve.tensor(yb)).backward()
        opt.step()
    xt, yt = data(300)
    assert (model(nerve.tensor(xt)).numpy().argmax(1) == yt).mean() > 0.95


def test_memory_stays_within_one_layers_columns_and_does_not_grow():
    """Training steps of a conv layer allocate at most the activations, the gradients and one chunk of
    columns (CHUNK_BYTES) beyond what they keep, and the peak is the same at step 8 as at step 2."""
    import tracemalloc
    nerve.manual_seed(0)
    conv = nn.Conv2d(32, 16, 3, padding=1)
    opt = nerve.optim.Adam(conv.parameters())
    x = nerve.randn(16, 32, 32, 32)  # 2.1 MB; columns of the whole batch: 16 * 32 * 32 * 288 * 4 B = 18.9 MB
    act = 16 * 16 * 32 * 32 * 4  # one output (or output gradient): 1 MB

    def step():
        opt.zero_grad()
        conv(x).square().mean().backward()
        opt.step()
    peaks = []
    tracemalloc.start()
    try:
        for i in range(8):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            step()
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    whole_columns = 16 * 32 * 32 * 288 * 4
    assert max(peaks) < C.CHUNK_BYTES + 4 * act + x.data.nbytes < whole_columns, peaks
    assert peaks[-1] <= peaks[1] * 1.05, peaks
