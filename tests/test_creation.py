"""Tensor creation: PyTorch's dtypes, the seeded generator, the default dtype, devices."""
import numpy as np
import pytest

import nerve


def test_creation_dtypes_follow_pytorch():
    assert nerve.tensor([1.0, 2.0]).dtype == np.float32
    assert nerve.tensor([1, 2]).dtype == np.int64
    assert nerve.tensor(np.zeros(2)).dtype == np.float64
    assert nerve.tensor([True]).dtype == np.bool_
    assert nerve.zeros(2, 3).shape == (2, 3) and nerve.zeros((2, 3)).dtype == np.float32
    assert nerve.ones(4).numpy().sum() == 4
    assert nerve.full((2, 2), 7.0).numpy().tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert nerve.arange(5).dtype == np.int64 and nerve.arange(0.0, 1.0, 0.25).shape == (4,)
    np.testing.assert_allclose(nerve.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(nerve.eye(3).numpy(), np.eye(3))
    x = nerve.randn(2, 3)
    for like in (nerve.zeros_like, nerve.ones_like, nerve.rand_like, nerve.randn_like):
        y = like(x)
        assert y.shape == x.shape and y.dtype == x.dtype


def test_random_functions_use_the_seeded_generator():
    nerve.manual_seed(7)
    a = (nerve.rand(3).numpy(), nerve.randn(3).numpy(), nerve.randint(0, 10, (3,)).numpy())
    nerve.manual_seed(7)
    b = (nerve.rand(3).numpy(), nerve.randn(3).numpy(), nerve.randint(0, 10, (3,)).numpy())
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    r = nerve.randint(3, 5, size=(100,)).numpy()
    assert r.min() >= 3 and r.max() < 5
    g = np.random.default_rng(1)
    assert nerve.rand(2, generator=g).shape == (2,)


def test_default_dtype_can_be_switched():
    nerve.set_default_dtype(nerve.float64)
    try:
        assert nerve.zeros(1).dtype == np.float64 and nerve.tensor([1.5]).dtype == np.float64
    finally:
        nerve.set_default_dtype(nerve.float32)
    with pytest.raises(TypeError):
        nerve.set_default_dtype(nerve.int64)


def test_cuda_without_cupy_names_the_package():
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here; the error path is for machines without it")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="CuPy"):
        nerve.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="expected one of cpu, cuda"):   # PyTorch's class
        nerve.zeros(2, device="tpu")
