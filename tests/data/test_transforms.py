import numpy as np
import pytest

import nerve
from nerve.data import DataLoader, TensorDataset
from nerve.data import transforms as T


def images(n=6, c=2, h=9, w=9):
    return np.random.default_rng(0).random((n, c, h, w)).astype(np.float32)


@pytest.mark.parametrize("transform", [
    T.RandomHorizontalFlip(), T.RandomVerticalFlip(), T.RandomRotation(20), T.RandomShift(2),
    T.RandomShift(0.2), T.RandomCrop(padding=2), T.RandomZoom((0.8, 1.2)), T.GaussianNoise(0.1),
    T.Normalize([0.5, 0.4], [0.2, 0.3]),
])
def test_shape_and_dtype_preserved(transform):
    x = images()
    out = transform(x)
    assert out.shape == x.shape and out.dtype == np.float32
    if not isinstance(transform, T.Normalize):
        assert transform(x[:, 0]).shape == x[:, 0].shape   # (N, H, W) batches work too


@pytest.mark.parametrize("make", [
    lambda g: T.RandomHorizontalFlip(generator=g), lambda g: T.RandomRotation(30, generator=g),
    lambda g: T.RandomShift(3, generator=g), lambda g: T.RandomCrop(7, padding=1, generator=g),
    lambda g: T.RandomZoom((0.7, 1.3), generator=g), lambda g: T.GaussianNoise(0.5, generator=g),
])
def test_seeded_determinism(make):
    x = images()
    np.testing.assert_array_equal(make(5)(x), make(np.random.default_rng(5))(x))
    nerve.manual_seed(1)
    a = make(None)(x)
    nerve.manual_seed(1)
    np.testing.assert_array_equal(a, make(None)(x))


def test_flips_exact():
    x = images()
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(x), x[..., ::-1, :])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(x), x)
    out = T.RandomHorizontalFlip(p=0.5, generator=2)(x)
    flipped = [np.array_equal(o, xi[..., ::-1]) for o, xi in zip(out, x)]
    kept = [np.array_equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_rotation_and_zoom_references():
    x = images(h=8, w=8)
    np.testing.assert_allclose(T.RandomRotation((90, 90))(x), np.rot90(x, axes=(-2, -1)), atol=1e-5)
    np.testing.assert_array_equal(T.RandomRotation(0)(x), x)
    np.testing.assert_array_equal(T.RandomZoom((1, 1))(x), x)
    z = T.RandomZoom((0.5, 0.5), fill=-1.0)(images(h=7, w=7))
    assert (z[..., 0, :] == -1).all() and (z[..., 3, 3] == images(h=7, w=7)[..., 3, 3]).all()


def test_affine_resample_matches_bilinear_loop():
    x = images(n=2, c=1, h=5, w=6)
    m = np.array([[[0.9, 0.2, 0.3], [-0.1, 1.1, -0.4]], [[1.0, 0.0, 0.5], [0.0, 1.0, 0.25]]])
    out = T.affine_resample(x, m, fill=0.5)
    ref = np.empty_like(x)
    cy, cx = 2.0, 2.5
    for n in range(2):
        for i in range(5):
            for j in range(6):
                sy = m[n, 0, 0] * (i - cy) + m[n, 0, 1] * (j - cx) + m[n, 0, 2] + cy
                sx = m[n, 1, 0] * (i - cy) + m[n, 1, 1] * (j - cx) + m[n, 1, 2] + cx
                y0, x0 = int(np.floor(sy)), int(np.floor(sx))
                total = 0.0
                for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                    for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                        inside = 0 <= yy < 5 and 0 <= xx < 6
                        total += wy * wx * (x[n, 0, yy, xx] if inside else 0.5)
                ref[n, 0, i, j] = total
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_shift_and_crop_are_exact_translations():
    x = images(n=40, c=1, h=6, w=6)
    out = T.RandomShift(2, generator=0)(x)
    for o, xi in zip(out, x):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(o, _shifted(xi, dy, dx))]
        assert matches
    crop = T.RandomCrop(4, generator=0)(x)
    assert crop.shape == (40, 1, 4, 4)
    assert all(any(np.array_equal(c, xi[:, i:i + 4, j:j + 4]) for i in range(3) for j in range(3))
               for c, xi in zip(crop, x))


def _shifted(img, dy, dx):
    out = np.zeros_like(img)
    h, w = img.shape[-2:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_noise_and_normalize():
    x = np.zeros((200, 1, 10, 10), np.float32)
    noisy = T.GaussianNoise(0.5, generator=0)(x)
    assert abs(noisy.std() - 0.5) < 0.02 and abs(noisy.mean()) < 0.02
    assert T.GaussianNoise(0.5, clip=(0, 1), generator=0)(x).min() == 0.0
    x = images()
    out = T.Normalize([0.5, 0.25], [2.0, 4.0])(x)
    np.testing.assert_allclose(out[:, 1], (x[:, 1] - 0.25) / 4.0, rtol=1e-6)
    flat = T.Normalize(0.5, 0.25)(np.ones((3, 4), np.float32))
    np.testing.assert_allclose(flat, 2.0)


def test_errors_and_tensor_input():
    with pytest.raises(ValueError, match=r"RandomRotation: expected a batch of images .* got shape \(4, 784\)"):
        T.RandomRotation(10)(np.zeros((4, 784), np.float32))
    with pytest.raises(ValueError, match="Normalize: std must be non-zero"):
        T.Normalize(0.0, [1.0, 0.0])
    with pytest.raises(ValueError, match="RandomCrop: crop size"):
        T.RandomCrop(20)(images())
    t = T.RandomHorizontalFlip(p=1.0)(nerve.tensor(images()))
    assert isinstance(t, nerve.Tensor) and t.shape == (6, 2, 9, 9)


def test_compose_in_loader():
    x = images(n=10, c=1)
    augment = T.Compose([T.RandomShift(1, generator=0), T.RandomRotation(10, generator=0),
                         T.Normalize(0.5, 0.25)])
    loader = DataLoader(TensorDataset(x, np.arange(10)), batch_size=4, transform=augment)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 1, 9, 9), (4, 1, 9, 9), (2, 1, 9, 9)]
    assert "RandomShift" in repr(augment)
