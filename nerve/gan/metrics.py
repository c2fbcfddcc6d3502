"""GAN measurements: mode coverage on Gaussian mixtures (VEEGAN/PacGAN's metric), and for images the Fréchet
distance and an Inception-Score-style score on the features/probabilities of a classifier trained on the real
data (the usual practice for MNIST-like data, where the Inception network does not apply)."""
from __future__ import annotations

import math
from typing import Any

from nerve.backend import xp
from nerve.tensor import Tensor

__all__ = ["mode_coverage", "frechet_distance", "gaussian_frechet_distance", "inception_score", "class_histogram"]


def _array(x: Any, who: str, ndim: int | None = None):
    a = x.data if isinstance(x, Tensor) else xp.asarray(x)
    a = a.astype(xp.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{who}: expected a {ndim}-d array, got shape {tuple(a.shape)}")
    return a


def mode_coverage(samples: Any, centers: Any, std: float, threshold: float = 3.0) -> dict:
    """{"modes": modes captured, "high_quality": fraction of high-quality samples, "reverse_kl": KL(q || uniform)}.

    A sample is high quality when within ``threshold`` std of its nearest center; a mode is captured when it
    is the nearest center of at least one high-quality sample; q is the histogram of the high-quality samples
    over the modes, and reverse_kl = sum_k q_k log(q_k K) (PacGAN, Lin et al. 2018; 0 when all modes are
    equally covered, log K when one holds all; inf when no sample is high quality). Evaluate on 2,500 samples
    to compare with the papers.
    """
    x, c = _array(samples, "mode_coverage: samples", 2), _array(centers, "mode_coverage: centers", 2)
    if x.shape[1] != c.shape[1] or len(x) == 0 or len(c) == 0:
        raise ValueError(f"mode_coverage: samples {tuple(x.shape)} and centers {tuple(c.shape)} must be non-empty "
                         "and share their second dimension")
    if not std > 0:
        raise ValueError(f"mode_coverage: std must be > 0, got {std!r}")
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]
    nearest = d2.argmin(1)
    dist = xp.sqrt(xp.maximum(d2[xp.arange(len(x)), nearest], 0.0))
    good = dist < threshold * std
    counts = xp.bincount(nearest[good], minlength=len(c))
    n_good = int(good.sum())
    if n_good:
        q = counts[counts > 0] / n_good
        reverse_kl = float((q * xp.log(q * len(c))).sum())
    else:
        reverse_kl = math.inf
    return {"modes": int((counts > 0).sum()), "high_quality": n_good / len(x), "reverse_kl": reverse_kl}


def _sqrt_psd(a):
    """The symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues -> 0)."""
    w, v = xp.linalg.eigh((a + a.T) / 2.0)
    return (v * xp.sqrt(xp.maximum(w, 0.0))) @ v.T


def gaussian_frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Fréchet (2-Wasserstein squared) distance of two
    Gaussians; tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2), both factors symmetric PSD."""
    mu1, mu2 = _array(mu1, "frechet_distance: mu1", 1), _array(mu2, "frechet_distance: mu2", 1)
    s1, s2 = _array(sigma1, "frechet_distance: sigma1", 2), _array(sigma2, "frechet_distance: sigma2", 2)
    if mu1.shape != mu2.shape or s1.shape != (len(mu1), len(mu1)) or s2.shape != s1.shape:
        raise ValueError(f"frechet_distance: means {tuple(mu1.shape)}, {tuple(mu2.shape)} and covariances "
                         f"{tuple(s1.shape)}, {tuple(s2.shape)} do not match")
    r1 = _sqrt_psd(s1)
    cross = xp.sqrt(xp.maximum(xp.linalg.eigvalsh(r1 @ s2 @ r1), 0.0)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + xp.trace(s1) + xp.trace(s2) - 2.0 * cross)


def frechet_distance(features1: Any, features2: Any) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of feature rows (N, D) (FID's formula; with
    a classifier trained on the data as the feature extractor, as done for MNIST-like GANs)."""
    f1, f2 = _array(features1, "frechet_distance: features1", 2), _array(features2, "frechet_distance: features2", 2)
    if f1.shape[1] != f2.shape[1] or len(f1) < 2 or len(f2) < 2:
        raise ValueError(f"frechet_distance: features {tuple(f1.shape)} and {tuple(f2.shape)} need the same width "
                         "and at least 2 rows each")
    return gaussian_frechet_distance(f1.mean(0), xp.cov(f1, rowvar=False), f2.mean(0), xp.cov(f2, rowvar=False))


def inception_score(probabilities: Any, splits: int = 1) -> float:
    """exp(E_x KL(p(y|x) || p(y))) from class probabilities (N, K) (Salimans et al. 2016), averaged over
    ``splits`` equal parts; between 1 (one class, or uniform predictions) and K (confident and balanced)."""
    p = _array(probabilities, "inception_score: probabilities", 2)
    if len(p) < splits or splits < 1:
        raise ValueError(f"inception_score: {len(p)} rows cannot make {splits} splits")
    if (p < 0).any() or not xp.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError("inception_score: rows must be probabilities (non-negative, summing to 1); pass softmax "
                         "outputs, not logits")
    scores = []
    for part in xp.array_split(p, splits):
        marginal = part.mean(0, keepdims=True)
        kl = xp.where(part > 0, part * (xp.log(xp.maximum(part, 1e-30)) - xp.log(xp.maximum(marginal, 1e-30))), 0.0)
        scores.append(math.exp(float(kl.sum(1).mean())))
    return sum(scores) / len(scores)


def class_histogram(probabilities: Any) -> list:
    """The fraction of samples assigned to each class (argmax of (N, K) probabilities or logits): mode
    coverage for images."""
    p = _array(probabilities, "class_histogram: probabilities", 2)
    counts = xp.bincount(p.argmax(1), minlength=p.shape[1])
    return [float(c) / len(p) for c in counts]
