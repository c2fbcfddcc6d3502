"""Measurements against independent references: mode coverage against a plain loop of PacGAN's definition, the
Fréchet distance against closed forms (diagonal and commuting covariances, translation) and scipy's sqrtm, the
IS-style score against a loop and its bounds, and the callbacks and PNG grids."""
import math
import struct
import zlib

import numpy as np
import pytest

import nerve
from nerve.gan import (
    GAN, ModeCoverage, SampleGrid, class_histogram, frechet_distance, inception_score, make_grid, mode_coverage,
    save_image,
)
from nerve.gan.metrics import gaussian_frechet_distance
from nerve.models.gan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator

CENTERS = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)


def coverage_loop(x, centers, std, threshold=3.0):
    counts = [0] * len(centers)
    good = 0
    for p in x:
        d = [math.dist(p, c) for c in centers]
        k = min(range(len(centers)), key=d.__getitem__)
        if d[k] < threshold * std:
            good += 1
            counts[k] += 1
    kl = sum(c / good * math.log(c / good * len(centers)) for c in counts if c) if good else math.inf
    return {"modes": sum(c > 0 for c in counts), "high_quality": good / len(x), "reverse_kl": kl}


def test_mode_coverage_matches_a_loop():
    rng = np.random.default_rng(0)
    # 3 modes used, unevenly, plus off-mode points
    x = np.concatenate([CENTERS[[0] * 50 + [3] * 20 + [5] * 5] + 0.02 * rng.standard_normal((75, 2)),
                        rng.uniform(-3, 3, (25, 2))])
    got, want = mode_coverage(x, CENTERS, 0.02), coverage_loop(x, CENTERS, 0.02)
    assert got["modes"] == want["modes"] and got["high_quality"] == pytest.approx(want["high_quality"])
    assert got["reverse_kl"] == pytest.approx(want["reverse_kl"], rel=1e-12)


def test_mode_coverage_extremes():
    perfect = np.repeat(CENTERS, 10, 0)
    assert mode_coverage(perfect, CENTERS, 0.02) == {"modes": 8, "high_quality": 1.0, "reverse_kl": 0.0}
    one = np.repeat(CENTERS[:1], 10, 0)
    assert mode_coverage(one, CENTERS, 0.02)["reverse_kl"] == pytest.approx(math.log(8))
    none = mode_coverage(np.zeros((5, 2)), CENTERS, 0.02)
    assert none["modes"] == 0 and none["high_quality"] == 0.0 and none["reverse_kl"] == math.inf
    with pytest.raises(ValueError, match=r"samples \(5, 3\) and centers \(8, 2\)"):
        mode_coverage(np.zeros((5, 3)), CENTERS, 0.02)
    with pytest.raises(ValueError, match="std must be > 0"):
        mode_coverage(perfect, CENTERS, 0.0)


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    d1, d2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    assert gaussian_frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(want, rel=1e-10)
    # commuting covariances Q diag Q^T: the same in the rotated basis
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    got = gaussian_frechet_distance(mu1, q @ np.diag(d1) @ q.T, mu2, q @ np.diag(d2) @ q.T)
    assert got == pytest.approx(want, rel=1e-9)
    # a general pair against scipy's matrix square root of the (non-symmetric) product
    sqrtm = pytest.importorskip("scipy.linalg").sqrtm
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    s1, s2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
    assert gaussian_frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)


def test_frechet_distance_of_features():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((2000, 3))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-9)
    # a shift by v adds |v|^2 and nothing else
    assert frechet_distance(f, f + np.array([1.0, 2.0, 0.0])) == pytest.approx(5.0, rel=1e-9)
    with pytest.raises(ValueError, match=r"features \(5, 3\) and \(5, 2\)"):
        frechet_distance(f[:5], f[:5, :2])


def test_inception_score_against_a_loop_and_its_bounds():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(5) * 0.3, 40)
    marginal = p.mean(0)
    want = math.exp(np.mean([sum(pi * math.log(pi / m) for pi, m in zip(row, marginal) if pi > 0) for row in p]))
    assert inception_score(p) == pytest.approx(want, rel=1e-10)
    assert inception_score(np.eye(5)[np.arange(50) % 5]) == pytest.approx(5.0)  # confident and balanced: K
    assert inception_score(np.full((10, 5), 0.2)) == pytest.approx(1.0)  # unsure: 1
    assert inception_score(np.eye(5)[np.zeros(10, int)]) == pytest.approx(1.0)  # one class: 1
    halves = inception_score(p, splits=2)
    assert halves == pytest.approx((inception_score(p[:20]) + inception_score(p[20:])) / 2)
    with pytest.raises(ValueError, match="not logits"):
        inception_score(np.array([[2.0, -1.0]]))
    assert class_histogram(np.eye(3)[[0, 0, 2, 1]]) == [0.5, 0.25, 0.25]


def read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, kind = struct.unpack(">IIBB", data[16:26])
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    channels = 1 if kind == 0 else 3
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * channels)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, channels)


def test_grid_png_round_trip(tmp_path):
    imgs = np.linspace(-1, 1, 3 * 4 * 5).reshape(3, 1, 4, 5)
    grid = make_grid(imgs, nrow=2, padding=1)
    assert grid.shape == (2 * 5 + 1, 2 * 6 + 1, 1)
    np.testing.assert_array_equal(grid[1:5, 1:6, 0], np.round((imgs[0, 0] + 1) / 2 * 255).astype(np.uint8))
    assert (grid[6:10, 7:12] == 255).all()  # the empty fourth cell stays white
    save_image(imgs, tmp_path / "g.png", nrow=2, padding=1, scale=1)
    np.testing.assert_array_equal(read_png(tmp_path / "g.png"), grid)
    with pytest.raises(ValueError, match=r"expected \(N, 1 or 3, H, W\) images, got shape \(2, 2, 4, 4\)"):
        make_grid(np.zeros((2, 2, 4, 4)))


def test_callbacks_log_coverage_and_write_grids(tmp_path):
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)
    data = (CENTERS[rng.integers(0, 8, 64)] + 0.02 * rng.standard_normal((64, 2))).astype(np.float32)
    gan = GAN(MLPGenerator(4, 2, hidden=(8,)), MLPDiscriminator(2, hidden=(8,)))
    cov = ModeCoverage(CENTERS, 0.02, n=500)
    history = gan.fit(data, epochs=2, batch_size=32, callbacks=[cov], verbose=0)
    assert len(history.history["modes"]) == 2
    assert history.history["modes"][-1] == mode_coverage(gan.sample(500, generator=0), CENTERS, 0.02)["modes"]

    nerve.manual_seed(0)
    img_gan = GAN(DCGANGenerator(8, width=4), DCGANDiscriminator(width=4))
    grid = SampleGrid(str(tmp_path / "e{epoch}.png"), n=6, nrow=3)
    img_gan.fit(np.zeros((8, 1, 28, 28), np.float32), epochs=2, batch_size=4, callbacks=[grid], verbose=0)
    assert grid.saved == [str(tmp_path / "e1.png"), str(tmp_path / "e2.png")]
    assert read_png(tmp_path / "e2.png").shape == (2 * (2 * 30 + 2), 2 * (3 * 30 + 2), 1)  # 28 + 2 padding, x2
