"""F.unfold/fold, pixel_shuffle/unshuffle, affine_grid and grid_sample against plain NumPy loops of their
definitions, with gradcheck and gradgradcheck in float64."""
import itertools

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.autograd import ShapeError

RNG = np.random.default_rng(0)


def t(a, grad=False):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def unfold_loop(x, k, d, p, s):
    n, c, h, w = x.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((n, c * k[0] * k[1], oh * ow))
    for b, ch, i, j, y, z in itertools.product(range(n), range(c), range(k[0]), range(k[1]), range(oh), range(ow)):
        out[b, (ch * k[0] + i) * k[1] + j, y * ow + z] = xp_[b, ch, y * s[0] + i * d[0], z * s[1] + j * d[1]]
    return out


def fold_loop(cols, size, k, d, p, s):
    n, ck, _ = cols.shape
    c = ck // (k[0] * k[1])
    oh = (size[0] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (size[1] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((n, c, size[0] + 2 * p[0], size[1] + 2 * p[1]))
    for b, ch, i, j, y, z in itertools.product(range(n), range(c), range(k[0]), range(k[1]), range(oh), range(ow)):
        out[b, ch, y * s[0] + i * d[0], z * s[1] + j * d[1]] += cols[b, (ch * k[0] + i) * k[1] + j, y * ow + z]
    return out[:, :, p[0]:p[0] + size[0], p[1]:p[1] + size[1]]


GEOMETRIES = [((2, 3), (1, 2), (1, 0), (2, 1)), ((3, 3), (1, 1), (2, 2), (2, 2)), ((1, 2), (2, 1), (0, 1), (1, 3))]


@pytest.mark.parametrize("k,d,p,s", GEOMETRIES)
def test_unfold_fold_match_loops_and_are_adjoint(k, d, p, s):
    x = RNG.standard_normal((2, 3, 5, 6))
    u = F.unfold(t(x), k, dilation=d, padding=p, stride=s)
    np.testing.assert_allclose(u.numpy(), unfold_loop(x, k, d, p, s))
    cols = RNG.standard_normal(u.shape)
    f = F.fold(t(cols), (5, 6), k, dilation=d, padding=p, stride=s)
    np.testing.assert_allclose(f.numpy(), fold_loop(cols, (5, 6), k, d, p, s))
    assert np.isclose((u.numpy() * cols).sum(), (x * f.numpy()).sum())  # <unfold x, y> = <x, fold y>
    np.testing.assert_allclose(nn.Fold((5, 6), k, d, p, s)(nn.Unfold(k, d, p, s)(t(x))).numpy(),
                               fold_loop(unfold_loop(x, k, d, p, s), (5, 6), k, d, p, s))


def test_unfold_fold_gradients_and_unbatched():
    x = t(RNG.standard_normal((1, 2, 4, 5)), grad=True)
    assert nerve.gradcheck(lambda a: F.unfold(a, 2, dilation=1, padding=1, stride=2), [x])
    assert nerve.gradgradcheck(lambda a: F.unfold(a, 2, padding=1, stride=2) ** 2, [x])
    c = t(RNG.standard_normal((1, 8, 9)), grad=True)
    assert nerve.gradcheck(lambda a: F.fold(a, (4, 5), 2, padding=1, stride=2), [c])
    assert nerve.gradgradcheck(lambda a: F.fold(a, (4, 5), 2, padding=1, stride=2) ** 2, [c])
    x3 = RNG.standard_normal((2, 4, 5))
    np.testing.assert_allclose(F.unfold(t(x3), 2).numpy(), unfold_loop(x3[None], (2, 2), (1, 1), (0, 0), (1, 1))[0])
    assert F.fold(F.unfold(t(x3), 2), (4, 5), 2).shape == (2, 4, 5)


def test_unfold_fold_errors():
    with pytest.raises(ShapeError, match="unfold: expected a 3-d"):
        F.unfold(t(np.zeros((2, 3))), 2)
    with pytest.raises(ValueError, match="unfold: kernel_size"):
        F.unfold(t(np.zeros((1, 1, 4, 4))), 0)
    with pytest.raises(ShapeError, match="unfold: no window"):
        F.unfold(t(np.zeros((1, 1, 2, 2))), 3)
    with pytest.raises(ShapeError, match=r"fold: input of shape \(1, 5, 9\)"):
        F.fold(t(np.zeros((1, 5, 9))), (4, 4), 2)
    with pytest.raises(ShapeError, match="dim 2 equal 9"):
        F.fold(t(np.zeros((1, 4, 8))), (4, 4), 2)


def test_pixel_shuffle_matches_loop_and_inverts():
    r = 2
    x = RNG.standard_normal((2, 3 * r * r, 3, 4))
    ref = np.zeros((2, 3, 3 * r, 4 * r))
    for b, c, h, w, i, j in itertools.product(range(2), range(3), range(3), range(4), range(r), range(r)):
        ref[b, c, h * r + i, w * r + j] = x[b, c * r * r + i * r + j, h, w]
    out = F.pixel_shuffle(t(x), r)
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(nn.PixelUnshuffle(r)(out).numpy(), x)
    np.testing.assert_array_equal(nn.PixelShuffle(r)(t(x[None])).numpy()[0], ref)  # extra batch dims
    with pytest.raises(ShapeError, match="pixel_shuffle: .*divisible by upscale_factor"):
        F.pixel_shuffle(t(np.zeros((1, 3, 2, 2))), 2)
    with pytest.raises(ShapeError, match="pixel_unshuffle: .*divisible"):
        F.pixel_unshuffle(t(np.zeros((1, 3, 3, 2))), 2)
    with pytest.raises(ValueError, match="upscale_factor must be a positive int"):
        F.pixel_shuffle(t(np.zeros((1, 4, 2, 2))), 0)


def base_coords(n, align):
    return np.linspace(-1, 1, n) * (1 if align else (n - 1) / n)


@pytest.mark.parametrize("align", [True, False])
def test_affine_grid_closed_form(align):
    theta = RNG.standard_normal((2, 2, 3))
    grid = F.affine_grid(t(theta), (2, 1, 3, 4), align_corners=align).numpy()
    xs, ys = base_coords(4, align), base_coords(3, align)
    for b, i, j in itertools.product(range(2), range(3), range(4)):
        np.testing.assert_allclose(grid[b, i, j], theta[b] @ np.array([xs[j], ys[i], 1.0]))
    theta3 = RNG.standard_normal((1, 3, 4))
    g3 = F.affine_grid(t(theta3), (1, 1, 2, 3, 4), align_corners=align).numpy()
    zs = base_coords(2, align)
    np.testing.assert_allclose(g3[0, 1, 2, 3], theta3[0] @ np.array([xs[3], base_coords(3, align)[2], zs[1], 1.0]))
    th = t(theta, grad=True)
    assert nerve.gradcheck(lambda a: F.affine_grid(a, (2, 1, 3, 4), align_corners=align), [th])
    with pytest.raises(ShapeError, match="affine_grid: expected theta"):
        F.affine_grid(t(np.zeros((2, 3, 3))), (2, 1, 3, 4))


def reflect(x, lo, hi):
    if lo == hi:
        return 0.0
    mn, span = lo / 2, (hi - lo) / 2
    x = abs(x - mn)
    flips, extra = np.floor(x / span), np.fmod(x, span)
    return extra + mn if flips % 2 == 0 else span - extra + mn


def sample_loop(img, grid, mode, padding, align):
    """2-d grid_sample by the definition, one output point at a time."""
    n, c, h, w = img.shape
    _, ho, wo, _ = grid.shape
    out = np.zeros((n, c, ho, wo))

    def pad(x, size):
        if padding == "reflection":
            x = reflect(x, 0, 2 * (size - 1)) if align else reflect(x, -1, 2 * size - 1)
        return min(max(x, 0), size - 1) if padding != "zeros" else x

    def keys(t):  # Keys' cubic kernel, A = -0.75
        a, t = -0.75, abs(t)
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1 if t <= 1 else a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
    for b, i, j in itertools.product(range(n), range(ho), range(wo)):
        raw = [(coord + 1) / 2 * (size - 1) if align else ((coord + 1) * size - 1) / 2
               for coord, size in ((grid[b, i, j, 0], w), (grid[b, i, j, 1], h))]
        px, py = pad(raw[0], w), pad(raw[1], h)

        def at(yy, xx):
            return img[b, :, yy, xx] if 0 <= yy < h and 0 <= xx < w else np.zeros(c)
        if mode == "bicubic":  # 4 x 4 taps around the unpadded position, each tap padded
            x0, y0 = np.floor(raw[0]), np.floor(raw[1])
            for dy, dx in itertools.product(range(-1, 3), repeat=2):
                weight = keys(raw[0] - (x0 + dx)) * keys(raw[1] - (y0 + dy))
                out[b, :, i, j] += weight * at(int(pad(y0 + dy, h)), int(pad(x0 + dx, w)))
        elif mode == "nearest":
            out[b, :, i, j] = at(int(np.rint(py)), int(np.rint(px)))
        else:
            x0, y0 = int(np.floor(px)), int(np.floor(py))
            fx, fy = px - x0, py - y0
            out[b, :, i, j] = ((1 - fx) * (1 - fy) * at(y0, x0) + fx * (1 - fy) * at(y0, x0 + 1)
                               + (1 - fx) * fy * at(y0 + 1, x0) + fx * fy * at(y0 + 1, x0 + 1))
    return out


@pytest.mark.parametrize("mode,padding,align", list(itertools.product(
    ["bilinear", "nearest", "bicubic"], ["zeros", "border", "reflection"], [True, False])))
def test_grid_sample_matches_loop(mode, padding, align):
    img = RNG.standard_normal((2, 2, 4, 5))
    grid = RNG.uniform(-1.5, 1.5, (2, 3, 4, 2))
    grid[0, 0, 0] = [1.0, -1.0]  # corners exactly
    out = F.grid_sample(t(img), t(grid), mode=mode, padding_mode=padding, align_corners=align)
    np.testing.assert_allclose(out.numpy(), sample_loop(img, grid, mode, padding, align), atol=1e-12)


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_gradients(padding):
    img = t(RNG.standard_normal((1, 2, 3, 4)), grad=True)
    grid = t(RNG.uniform(-1.3, 1.3, (1, 2, 3, 2)), grad=True)

    def fn(a, g):
        return F.grid_sample(a, g, padding_mode=padding, align_corners=False)
    assert nerve.gradcheck(fn, [img, grid])
    assert nerve.gradgradcheck(fn, [img, grid])
    def cubic(a, g):
        return F.grid_sample(a, g, mode="bicubic", padding_mode=padding)
    assert nerve.gradcheck(cubic, [img, grid]) and nerve.gradgradcheck(cubic, [img, grid])
    near = F.grid_sample(img, grid, mode="nearest", padding_mode=padding)
    near.sum().backward()
    assert grid.grad is None  # nearest sampling is piecewise constant in the grid (PyTorch fills zeros)


def test_grid_sample_3d_identity_and_errors():
    vol = RNG.standard_normal((1, 2, 3, 4, 5))
    grid = F.affine_grid(t(np.eye(3, 4)[None]), (1, 2, 3, 4, 5), align_corners=True)
    np.testing.assert_allclose(F.grid_sample(t(vol), grid, align_corners=True).numpy(), vol, atol=1e-12)
    img = RNG.standard_normal((1, 1, 3, 4))
    grid2 = F.affine_grid(t(np.eye(2, 3)[None]), (1, 1, 3, 4), align_corners=False)
    np.testing.assert_allclose(F.grid_sample(t(img), grid2).numpy(), img, atol=1e-12)
    with pytest.raises(ValueError, match="grid_sample: mode"):
        F.grid_sample(t(img), grid2, mode="area")
    with pytest.raises(ValueError, match="bicubic mode needs a 4-d input"):
        F.grid_sample(t(vol), F.affine_grid(t(np.eye(3, 4)[None]), (1, 2, 3, 4, 5)), mode="bicubic")
    with pytest.raises(ShapeError, match=r"grid_sample: .*got input \(1, 1, 3, 4\) and grid \(1, 3, 4, 3\)"):
        F.grid_sample(t(img), t(np.zeros((1, 3, 4, 3))))


def test_spatial_transformer_learns_a_shift():
    """A learned affine transform (theta from zero shift) recovers a known translation by gradient descent."""
    img = np.zeros((1, 1, 8, 8))
    img[0, 0, 2:5, 3:6] = 1.0
    truth = F.grid_sample(t(img), F.affine_grid(t([[[1, 0, 0.3], [0, 1, -0.2]]]), (1, 1, 8, 8))).detach()
    shift = nerve.tensor(np.zeros((1, 2)), requires_grad=True)
    opt = nerve.optim.Adam([shift], lr=0.05)
    for _ in range(150):
        theta = nerve.cat([nerve.tensor(np.eye(2)[None]), shift.unsqueeze(-1)], dim=2)
        loss = ((F.grid_sample(t(img), F.affine_grid(theta, (1, 1, 8, 8))) - truth) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(shift.detach().numpy()[0], [0.3, -0.2], atol=0.03)


@pytest.mark.parametrize("align,size", [(True, (7, 3)), (False, (7, 3)), (False, (2, 9))])
def test_interpolate_bicubic_matches_loop(align, size):
    img = RNG.standard_normal((1, 2, 4, 5))
    out = F.interpolate(t(img), size=size, mode="bicubic", align_corners=align).numpy()

    def keys(d):
        a, d = -0.75, abs(d)
        return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1 if d <= 1 else a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a

    def source(i, n_in, n_out):
        if align:
            return i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        return (i + 0.5) * n_in / n_out - 0.5
    ref = np.zeros((1, 2) + size)
    for i, j in itertools.product(range(size[0]), range(size[1])):
        sy, sx = source(i, 4, size[0]), source(j, 5, size[1])
        y0, x0 = int(np.floor(sy)), int(np.floor(sx))
        for dy, dx in itertools.product(range(-1, 3), repeat=2):
            yy, xx = min(max(y0 + dy, 0), 3), min(max(x0 + dx, 0), 4)
            ref[0, :, i, j] += keys(sy - (y0 + dy)) * keys(sx - (x0 + dx)) * img[0, :, yy, xx]
    np.testing.assert_allclose(out, ref, atol=1e-12)
    x = t(img, grad=True)
    assert nerve.gradcheck(lambda a: F.interpolate(a, size=size, mode="bicubic", align_corners=align), [x])
    with pytest.raises(ValueError, match="antialias=True is not supported"):
        F.interpolate(t(img), size=size, mode="bicubic", antialias=True)
