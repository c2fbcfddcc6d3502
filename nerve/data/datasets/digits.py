"""scikit-learn's embedded 8x8 handwritten digits (1,797 images, no download needed)."""
from __future__ import annotations

import numpy

__all__ = ["load_digits"]


def load_digits(flatten: bool = True) -> tuple:
    """The digits as NumPy arrays ``(X, y)``: X float32 in [0, 1] (pixel counts 0..16 divided by 16), y int64.

    X is (1797, 64), or (1797, 1, 8, 8) with ``flatten=False``. Needs scikit-learn, which ships the data.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as exc:
        raise ImportError("load_digits: the digits come with scikit-learn, which is not installed "
                          "(pip install scikit-learn)") from exc
    bunch = sklearn_load_digits()
    x = (bunch.data / 16.0).astype(numpy.float32)
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    return x, bunch.target.astype(numpy.int64)
