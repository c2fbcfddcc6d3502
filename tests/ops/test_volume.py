"""3-d convolution, transposed convolution and pooling (the 3-d cases of ``nerve.ops.conv`` and ``nerve.ops.pool``)
through the op table against plain-loop NumPy references of the published formulas (gradcheck and gradgradcheck in
float64, both rule paths, the poisoned namespace); the layers (shapes, parameters, state dicts, padding modes,
errors); small tasks the layers learn."""
import itertools

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.ops.conv import conv_geometry
from nerve.ops.conv import ConvWeight
from tests.functional.test_spatial import ref_adaptive
from tests.helpers import T
from tests.ops.table import Case, table_tests
from tests.ops.test_pool import ref_avg_pool, ref_max_pool

RNG = np.random.default_rng(19)


def _t3(v):
    return tuple(v) if isinstance(v, tuple) else (v,) * 3


# --- loop references -------------------------------------------------------------------------------------------
def ref_conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o, i] = b[o] + sum_{c, k} w[o, c, k] x[n, g C/G + c, i stride - padding + k dilation] (zeros outside)."""
    stride, padding, dilation = _t3(stride), _t3(padding), _t3(dilation)
    n_, c_, *size = x.shape
    o_, cg, *kernel = w.shape
    out = [(s + 2 * p - d * (k - 1) - 1) // st + 1 for s, p, d, k, st in zip(size, padding, dilation, kernel, stride)]
    y = np.zeros((n_, o_) + tuple(out))
    og = o_ // groups
    for n, o in itertools.product(range(n_), range(o_)):
        for pos in itertools.product(*map(range, out)):
            total = 0.0 if b is None else b[o]
            for c in range(cg):
                for k in itertools.product(*map(range, kernel)):
                    src = tuple(i * st - p + kk * d for i, st, p, kk, d in zip(pos, stride, padding, k, dilation))
                    if all(0 <= a < s for a, s in zip(src, size)):
                        total += w[(o, c) + k] * x[(n, (o // og) * cg + c) + src]
            y[(n, o) + pos] = total
    return y


def ref_conv_transpose3d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Each input value scattered through the kernel: y[n, g O/G + o, i stride - padding + k dilation] +=
    x[n, c, i] w[c, o, k] (c in group g); output (in - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1."""
    stride, padding, dilation, extra = _t3(stride), _t3(padding), _t3(dilation), _t3(output_padding)
    n_, c_, *size = x.shape
    _, og, *kernel = w.shape
    out = [(s - 1) * st - 2 * p + d * (k - 1) + e + 1
           for s, st, p, d, k, e in zip(size, stride, padding, dilation, kernel, extra)]
    y = np.zeros((n_, og * groups) + tuple(out))
    cg = c_ // groups
    for n, c in itertools.product(range(n_), range(c_)):
        g = c // cg
        for pos in itertools.product(*map(range, size)):
            for o in range(og):
                for k in itertools.product(*map(range, kernel)):
                    dst = tuple(i * st - p + kk * d for i, st, p, kk, d in zip(pos, stride, padding, k, dilation))
                    if all(0 <= a < s for a, s in zip(dst, out)):
                        y[(n, g * og + o) + dst] += x[(n, c) + pos] * w[(c, o) + k]
    if b is not None:
        y += b.reshape(-1, 1, 1, 1)
    return y


# --- the op table --------------------------------------------------------------------------------------------
#: (input shape, weight shape, bias, stride, padding, dilation, groups); odd shapes: batch 1, channel 1,
#: non-cubic kernels, stride 2, dilation 2, groups
CONV_CASES = [
    ((2, 2, 4, 3, 4), (3, 2, 2, 2, 2), True, 1, 0, 1, 1),
    ((1, 1, 5, 4, 6), (2, 1, 3, 1, 2), False, 2, 1, 1, 1),
    ((1, 2, 5, 5, 4), (2, 2, 2, 3, 1), True, (1, 2, 1), (1, 0, 1), 2, 1),
    ((2, 4, 3, 4, 3), (2, 2, 1, 2, 2), True, 1, (0, 1, 1), (1, 1, 2), 2),
]
#: (input shape, weight shape, bias, stride, padding, output_padding, groups, dilation)
TRANSPOSE_CASES = [
    ((2, 2, 2, 3, 2), (2, 3, 2, 2, 2), True, 1, 0, 0, 1, 1),
    ((1, 1, 2, 3, 2), (1, 2, 3, 1, 2), False, 2, 1, 1, 1, 1),
    ((1, 2, 3, 2, 2), (2, 1, 2, 2, 1), True, (2, 1, 2), (0, 1, 0), (1, 0, 0), 1, 2),
    ((2, 4, 2, 2, 3), (4, 1, 2, 1, 2), True, 2, 0, (1, 0, 1), 2, 1),
]
#: (input shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [((2, 2, 4, 4, 4), 2, None, 0, 1, False), ((1, 1, 5, 4, 6), (3, 2, 2), 2, (1, 1, 0), (1, 2, 1), False),
             ((1, 2, 5, 5, 5), 2, 2, 1, 1, True)]
#: (input shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [((2, 2, 4, 4, 4), 2, None, 0, False, True, None), ((1, 1, 5, 4, 6), (3, 2, 2), 2, 1, False, False, None),
             ((1, 2, 5, 5, 5), 3, 2, 1, True, True, None), ((1, 1, 4, 4, 4), 2, 2, 0, False, True, 3)]


def _conv_case(i, case):
    xs, ws, bias, stride, padding, dilation, groups = case
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    return Case(f"conv3d[{i}]", lambda x, w, b=None: F.conv3d(x, w, b, stride, padding, dilation, groups),
                lambda x, w, b=None: ref_conv3d(x, w, b, stride, padding, dilation, groups), shapes,
                second=i < 2, rtol=1e-12, atol=1e-12)


def _transpose_case(i, case):
    xs, ws, bias, stride, padding, extra, groups, dilation = case
    shapes = [xs, ws] + ([(ws[1] * groups,)] if bias else [])
    return Case(f"conv_transpose3d[{i}]",
                lambda x, w, b=None: F.conv_transpose3d(x, w, b, stride, padding, extra, groups, dilation),
                lambda x, w, b=None: ref_conv_transpose3d(x, w, b, stride, padding, extra, groups, dilation), shapes,
                second=i < 2, rtol=1e-12, atol=1e-12)


#: the weight face alone: convW(x, y) is the gradient of <conv(x, w), y> in w, i.e. the loop over windows
W_GEOM = conv_geometry("test", (4, 3, 4), (2, 2, 3), 1, (1, 0, 1), (1, 1, 1), 1)


def ref_conv_weight(x, y, kernel=(2, 2, 3), padding=(1, 0, 1)):
    """w[o, c, k] = sum_{n, i} y[n, o, i] x[n, c, i + k - padding] (zeros outside)."""
    xpad = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    w = np.zeros((y.shape[1], x.shape[1]) + kernel)
    for o, c in itertools.product(range(y.shape[1]), range(x.shape[1])):
        for k in itertools.product(*map(range, kernel)):
            win = xpad[(slice(None), c) + tuple(slice(kk, kk + s) for kk, s in zip(k, y.shape[2:]))]
            w[(o, c) + k] = (win * y[:, o]).sum()
    return w


def _cases():
    for i, case in enumerate(CONV_CASES):
        yield _conv_case(i, case)
    for i, case in enumerate(TRANSPOSE_CASES):
        yield _transpose_case(i, case)
    yield Case("conv_weight_3d", lambda x, y: ConvWeight.apply(x, y, W_GEOM), ref_conv_weight,
               [(2, 2, 4, 3, 4), (2, 3, 5, 2, 4)], second=True, rtol=1e-12, atol=1e-12)
    yield Case("conv3d_unbatched", lambda x, w: F.conv3d(x, w, padding="same"),
               lambda x, w: ref_conv3d(x[None], w, padding=1)[0], [(2, 3, 3, 3), (1, 2, 3, 3, 3)], rtol=1e-12,
               atol=1e-12)
    for i, (shape, kernel, stride, padding, dilation, ceil) in enumerate(MAX_CASES):
        args = (_t3(kernel), _t3(stride or kernel), _t3(padding), _t3(dilation), ceil)
        yield Case(f"max_pool3d[{i}]", lambda x, a=args: F.max_pool3d(x, *a),
                   lambda x, a=args: ref_max_pool(x, *a)[0], [shape], second=i == 0)
    for i, (shape, kernel, stride, padding, ceil, include, override) in enumerate(AVG_CASES):
        args = (_t3(kernel), _t3(stride or kernel), _t3(padding), ceil, include, override)
        yield Case(f"avg_pool3d[{i}]", lambda x, a=args: F.avg_pool3d(x, *a),
                   lambda x, a=args: ref_avg_pool(x, *a)[0], [shape], second=i == 0, rtol=1e-12, atol=1e-14)
    for shape, size in [((1, 2, 4, 6, 4), (2, 3, 1)), ((2, 1, 5, 4, 7), (3, 2, 4))]:  # even and uneven bins
        yield Case(f"adaptive_avg_pool3d{size}", lambda x, s=size: F.adaptive_avg_pool3d(x, s),
                   lambda x, s=size: ref_adaptive(x, s, np.mean), [shape], second=True, rtol=1e-12, atol=1e-14)
        yield Case(f"adaptive_max_pool3d{size}", lambda x, s=size: F.adaptive_max_pool3d(x, s),
                   lambda x, s=size: ref_adaptive(x, s, np.max), [shape], second=True)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_conv_transpose3d_is_the_adjoint_of_conv3d():
    """<conv3d(x, w), y> = <x, conv_transpose3d(y, w)> for the same stride, padding, dilation, groups."""
    x, w, y = RNG.standard_normal((2, 4, 5, 6, 5)), RNG.standard_normal((6, 2, 3, 2, 3)), None
    conv = ref_conv3d(x, w, None, (2, 1, 2), (1, 0, 1), (1, 2, 1), 2)
    y = RNG.standard_normal(conv.shape)
    back = F.conv_transpose3d(T(y), T(w), None, (2, 1, 2), (1, 0, 1), 0, 2, (1, 2, 1)).numpy()
    assert back.shape == x.shape
    np.testing.assert_allclose((conv * y).sum(), (x * back).sum(), rtol=1e-12)


def test_chunks_of_images_give_the_same_faces(monkeypatch):
    """With columns limited to about one image, every face runs chunk by chunk and still matches the loops; an empty
    batch gives empty outputs and a zero weight gradient."""
    from nerve.ops import conv
    monkeypatch.setattr(conv, "CHUNK_BYTES", 2 * 3 * 8 * 12 * 8)
    x, w = T(RNG.standard_normal((5, 2, 4, 3, 4)), True), T(RNG.standard_normal((3, 2, 2, 2, 3)), True)
    y = F.conv3d(x, w, padding=(1, 0, 1))
    np.testing.assert_allclose(y.numpy(), ref_conv3d(x.numpy(), w.numpy(), padding=(1, 0, 1)), rtol=1e-12)
    g = RNG.standard_normal(y.shape)
    gx, gw = nerve.grad(y, [x, w], nerve.tensor(g))
    np.testing.assert_allclose(gx.numpy(), ref_conv_transpose3d(g, w.numpy(), padding=(1, 0, 1)), rtol=1e-12)
    np.testing.assert_allclose(gw.numpy(), ref_conv_weight(x.numpy(), g, (2, 2, 3), (1, 0, 1)), rtol=1e-12)
    empty = T(np.zeros((0, 2, 4, 3, 4)), True)
    out = F.conv3d(empty, w)
    assert out.shape == (0, 3, 3, 2, 2)
    ge, gw = nerve.grad(out.sum(), [empty, w])
    assert ge.shape == empty.shape and not gw.numpy().any()


def test_max_pool3d_indices_and_max_unpool3d_invert_it():
    x = T(RNG.standard_normal((2, 3, 4, 6, 5)), True)
    out, idx = F.max_pool3d(x, 2, return_indices=True)
    want, want_idx = ref_max_pool(x.numpy(), (2,) * 3, (2,) * 3, (0,) * 3, (1,) * 3, False)
    np.testing.assert_array_equal(out.numpy(), want)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    back = F.max_unpool3d(out, idx, 2, output_size=x.shape[2:])
    kept = np.zeros(x.shape)
    flat = kept.reshape(2, 3, -1)
    np.put_along_axis(flat, want_idx.reshape(2, 3, -1), want.reshape(2, 3, -1), 2)
    np.testing.assert_array_equal(back.numpy(), kept)


# --- layers --------------------------------------------------------------------------------------------------
def test_conv3d_layer_parameters_init_state_dict_and_reference():
    nerve.manual_seed(3)
    conv = nn.Conv3d(4, 6, (3, 1, 2), stride=(2, 1, 1), padding=(1, 0, 1), dilation=(1, 1, 2), groups=2).double()
    assert conv.weight.shape == (6, 2, 3, 1, 2) and conv.bias.shape == (6,)
    assert sum(p.numel() for p in conv.parameters()) == 6 * 2 * 6 + 6
    bound = 1 / np.sqrt(2 * 3 * 1 * 2)  # kaiming_uniform(a=sqrt(5)) and the bias share 1/sqrt(fan_in)
    assert np.abs(conv.weight.numpy()).max() <= bound and np.abs(conv.bias.numpy()).max() <= bound
    x = T(RNG.standard_normal((2, 4, 5, 3, 4)))
    want = ref_conv3d(x.numpy(), conv.weight.numpy(), conv.bias.numpy(), (2, 1, 1), (1, 0, 1), (1, 1, 2), 2)
    np.testing.assert_allclose(conv(x).numpy(), want, rtol=1e-12)
    other = nn.Conv3d(4, 6, (3, 1, 2), stride=(2, 1, 1), padding=(1, 0, 1), dilation=(1, 1, 2), groups=2).double()
    other.load_state_dict(conv.state_dict())
    np.testing.assert_array_equal(other(x).numpy(), conv(x).numpy())
    assert "Conv3d(4, 6, kernel_size=(3, 1, 2)" in repr(conv)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_conv3d_padding_modes_pad_then_convolve(mode, np_mode):
    conv = nn.Conv3d(2, 3, (3, 2, 3), padding="same", padding_mode=mode).double()
    x = T(RNG.standard_normal((1, 2, 4, 3, 4)), True)
    xpad = np.pad(x.numpy(), [(0, 0), (0, 0), (1, 1), (0, 1), (1, 1)], mode=np_mode)
    np.testing.assert_allclose(conv(x).numpy(), ref_conv3d(xpad, conv.weight.numpy(), conv.bias.numpy()),
                               rtol=1e-12)
    assert nerve.gradcheck(lambda x: conv(x), [x])


def test_conv_transpose3d_layer_output_size_and_reference():
    nerve.manual_seed(4)
    up = nn.ConvTranspose3d(2, 4, 3, stride=2, padding=1, groups=2).double()
    assert up.weight.shape == (2, 2, 3, 3, 3)
    x = T(RNG.standard_normal((1, 2, 3, 2, 3)))
    out = up(x, output_size=(6, 4, 5))
    assert out.shape == (1, 4, 6, 4, 5)
    want = ref_conv_transpose3d(x.numpy(), up.weight.numpy(), up.bias.numpy(), 2, 1, (1, 1, 0), 2)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    with pytest.raises(ValueError, match="ConvTranspose3d.*only padding_mode='zeros'"):
        nn.ConvTranspose3d(2, 4, 3, padding_mode="reflect")


def test_pool3d_layers_match_functions_and_configs():
    x = nerve.randn(2, 3, 4, 6, 6)
    pool = nn.MaxPool3d(2, return_indices=True)
    out, idx = pool(x)
    np.testing.assert_array_equal(out.numpy(), F.max_pool3d(x, 2).numpy())
    np.testing.assert_array_equal(nn.MaxUnpool3d(2)(out, idx).numpy(), F.max_unpool3d(out, idx, 2).numpy())
    avg = nn.AvgPool3d((2, 3, 3), stride=1, padding=1, count_include_pad=False)
    np.testing.assert_allclose(avg(x).numpy(), F.avg_pool3d(x, (2, 3, 3), 1, 1, False, False).numpy())
    assert avg.get_config()["divisor_override"] is None and pool.get_config()["return_indices"] is True
    np.testing.assert_allclose(nn.AdaptiveAvgPool3d(1)(x).numpy(), x.numpy().mean((2, 3, 4), keepdims=True), rtol=1e-5)
    out, idx = nn.AdaptiveMaxPool3d((2, 3, 2), return_indices=True)(x)
    np.testing.assert_array_equal(out.numpy(), np.take_along_axis(x.numpy().reshape(2, 3, -1), idx.numpy().reshape(
        2, 3, -1), 2).reshape(out.shape))


def test_errors_are_runtime_errors_naming_the_shapes():
    w = nerve.randn(4, 2, 3, 3, 3)
    with pytest.raises(RuntimeError, match=r"conv3d: expected input \(N, 2, D, H, W\).*got \(1, 3, 5, 5, 5\)"):
        F.conv3d(nerve.randn(1, 3, 5, 5, 5), w)
    with pytest.raises(RuntimeError, match=r"conv3d: weight must have shape .* with 3 kernel dims"):
        F.conv3d(nerve.randn(1, 2, 5, 5), nerve.randn(4, 2, 3, 3))
    with pytest.raises(RuntimeError, match=r"conv3d: bias must have shape \(4,\), got \(3,\)"):
        F.conv3d(nerve.randn(1, 2, 5, 5, 5), w, nerve.randn(3))
    with pytest.raises(RuntimeError, match=r"conv_transpose3d: expected input \(N, 4, D, H, W\)"):
        F.conv_transpose3d(nerve.randn(1, 2, 3, 3, 3), w)
    with pytest.raises(ValueError, match=r"conv3d: groups=3 must be positive and divide"):
        F.conv3d(nerve.randn(1, 6, 5, 5, 5), w, groups=3)
    with pytest.raises(ValueError, match=r"conv3d: input of spatial size \(2, 5, 5\).*smaller than the kernel"):
        F.conv3d(nerve.randn(1, 2, 2, 5, 5), w)
    with pytest.raises(RuntimeError, match=r"max_pool3d: expected input \(N, C, D, H, W\)"):
        F.max_pool3d(nerve.randn(5, 5), 2)
    # ShapeError is PyTorch's RuntimeError and nerve's earlier ValueError: both except clauses catch it
    with pytest.raises(ValueError, match=r"conv3d: expected input"):
        F.conv3d(nerve.randn(1, 3, 5, 5, 5), w)
    with pytest.raises(ValueError, match=r"Conv3d\(2 -> 4, k=3\): expected input \(N, 2, D, H, W\)"):
        nn.Conv3d(2, 4, 3)(nerve.randn(2, 5, 5, 5, 5))


# --- small tasks ---------------------------------------------------------------------------------------------
def _line_volumes(rng, n, size=6):
    """Volumes with one bright line along depth, height or width (the class) through a random point, in noise."""
    x = 0.3 * rng.standard_normal((n, 1, size, size, size))
    y = rng.integers(0, 3, n)
    for i, axis in enumerate(y):
        point = [slice(None) if a == axis else rng.integers(0, size) for a in range(3)]
        x[(i, 0) + tuple(point)] += 1.5
    return x.astype(np.float32), y


def test_conv3d_network_learns_the_orientation_of_a_line():
    """Conv3d -> ReLU -> MaxPool3d -> AvgPool3d -> Linear separates three line orientations (chance 1/3)."""
    rng = np.random.default_rng(0)
    nerve.manual_seed(0)
    x, y = _line_volumes(rng, 192)
    xt, yt = _line_volumes(rng, 96)
    model = nn.Sequential(nn.Conv3d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2), nn.AvgPool3d(3),
                          nn.Flatten(), nn.Linear(6, 3))
    opt = nerve.optim.Adam(model.parameters(), lr=0.03)
    for epoch in range(12):
        for i in range(0, len(x), 32):
            loss = F.cross_entropy(model(nerve.tensor(x[i:i + 32])), nerve.tensor(y[i:i + 32]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with nerve.no_grad():
        accuracy = (model(nerve.tensor(xt)).numpy().argmax(1) == yt).mean()
    assert accuracy >= 0.9, accuracy


def test_conv_transpose3d_learns_a_teachers_upsampling():
    """A ConvTranspose3d fitted to a fixed random teacher's outputs brings the loss down by 100x."""
    rng = np.random.default_rng(1)
    nerve.manual_seed(1)
    teacher = nn.ConvTranspose3d(2, 1, 2, stride=2)
    student = nn.ConvTranspose3d(2, 1, 2, stride=2)
    x = nerve.tensor(rng.standard_normal((16, 2, 3, 3, 3)).astype(np.float32))
    with nerve.no_grad():
        target = teacher(x)
    opt = nerve.optim.Adam(student.parameters(), lr=0.05)
    losses = []
    for _ in range(150):
        loss = F.mse_loss(student(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100, (losses[0], losses[-1])


def test_bench_torch_spatial_agrees_with_pytorch():
    """bench/torch_spatial.py (a PyTorch reference script) runs where PyTorch is installed and finds no difference."""
    pytest.importorskip("torch")
    from tests.test_scripts import number, run_script
    out = run_script("bench/torch_spatial.py", "--trials", "2", "--no-speed")
    number(r"^largest difference: (\S+)", out, 0.0, 1e-9)
