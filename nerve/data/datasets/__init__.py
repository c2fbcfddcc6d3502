"""Datasets as NumPy arrays ``(X, y)`` (X float32, y int64): embedded digits, MNIST, Fashion-MNIST, toy sets.

Wrap them in ``nerve.data.TensorDataset(X, y)`` to batch them with a ``DataLoader``.
"""
from nerve.data.datasets.digits import load_digits
from nerve.data.datasets.download import cache_dir
from nerve.data.datasets.idx import load_fashion_mnist, load_mnist, read_idx
from nerve.data.datasets.shakespeare import load_shakespeare
from nerve.data.datasets.toy import make_circles, make_moons, make_spirals, make_xor

__all__ = ["load_digits", "load_mnist", "load_fashion_mnist", "read_idx", "cache_dir", "load_shakespeare",
           "make_moons", "make_circles", "make_spirals", "make_xor"]
