"""Creation the PyTorch way: copy semantics, keywords on every function, randint's forms, nerve.Generator."""
import numpy as np
import pytest

import nerve


def test_tensor_copies_as_tensor_and_from_numpy_share():
    a = np.array([1.0, 2.0, 3.0])
    t = nerve.tensor(a)
    a[0] = 100.0
    assert t.numpy()[0] == 1.0                  # tensor() copied
    t.add_(1)
    assert a[1] == 2.0                          # ... in both directions
    shared = nerve.as_tensor(a)
    numpy_view = nerve.from_numpy(a)
    a[1] = -5.0
    assert shared.numpy()[1] == -5.0 and numpy_view.numpy()[1] == -5.0
    numpy_view.mul_(2)
    assert a[1] == -10.0
    assert nerve.as_tensor(a, dtype=nerve.float32).dtype == np.float32      # a cast copies (as in PyTorch)
    x = nerve.ones(2, requires_grad=True)
    assert nerve.as_tensor(x) is x
    copy = nerve.tensor(x)
    assert not copy.requires_grad and not np.shares_memory(copy.data, x.data)
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        nerve.from_numpy([1.0])


def test_tensor_from_nested_lists_of_tensors_and_scalars():
    t = nerve.tensor([nerve.tensor(1.0), nerve.tensor(2.0)])
    assert t.tolist() == [1.0, 2.0] and t.dtype == np.float32
    assert nerve.tensor(3).dtype == np.int64 and nerve.tensor(2.5).shape == ()
    assert nerve.tensor(np.float64(2.5)).dtype == np.float64


@pytest.mark.parametrize("fn, args", [(nerve.zeros, (2, 3)), (nerve.ones, (2, 3)), (nerve.empty, (2, 3)),
                                      (nerve.rand, (2, 3)), (nerve.randn, (2, 3))])
def test_size_forms_and_keywords(fn, args):
    for t in (fn(*args), fn(args), fn(list(args)), fn(size=args)):
        assert t.shape == (2, 3) and t.dtype == np.float32
    t = fn(*args, dtype=nerve.float64, device=nerve.device("cpu"), requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad and t.is_leaf
    with pytest.raises(RuntimeError, match="negative dimension"):
        fn(2, -1)
    with pytest.raises(TypeError, match="both positionally"):
        fn(2, size=(2,))
    with pytest.raises(TypeError, match="unexpected keyword"):
        fn(2, colour="red")


def test_fills_ranges_and_like_functions_take_the_keywords():
    assert nerve.full((2,), 7).dtype == np.int64 and nerve.full((2,), True).dtype == np.bool_
    assert nerve.full((2,), 0.5, dtype=nerve.float64, requires_grad=True).requires_grad
    np.testing.assert_allclose(nerve.logspace(0, 2, 3).numpy(), [1.0, 10.0, 100.0])
    np.testing.assert_allclose(nerve.logspace(0, 3, 4, base=2.0).numpy(), [1.0, 2.0, 4.0, 8.0])
    assert nerve.arange(5.0).dtype == np.float32 and nerve.arange(1, 4).tolist() == [1, 2, 3]
    assert nerve.arange(nerve.tensor(3)).tolist() == [0, 1, 2]
    assert nerve.arange(0, 1, 0.25, dtype=nerve.float64, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        nerve.arange(0, 3, 0)
    with pytest.raises(RuntimeError, match="wrong way"):
        nerve.arange(3, 0, 1)
    assert nerve.linspace(0, 1, 3, requires_grad=True).requires_grad
    assert nerve.eye(2, 3, dtype=nerve.int64).dtype == np.int64
    x = nerve.ones(2, 2, dtype=nerve.float64)
    for like in (nerve.zeros_like, nerve.ones_like, nerve.empty_like, nerve.rand_like, nerve.randn_like):
        y = like(x, requires_grad=True)
        assert y.shape == (2, 2) and y.dtype == np.float64 and y.requires_grad
        assert like(x, dtype=nerve.float32).dtype == np.float32
    assert nerve.full_like(x, 3, dtype=nerve.int64).tolist() == [[3, 3], [3, 3]]
    with pytest.raises(TypeError, match="floating dtype"):
        nerve.rand(2, dtype=nerve.int64)


def test_out_keyword_writes_in_place():
    out = nerve.ones(2, 2)
    assert nerve.zeros(2, 2, out=out) is out and out.numpy().sum() == 0
    with pytest.raises(RuntimeError, match="out has shape"):
        nerve.zeros(3, out=out)


def test_randint_in_all_its_forms_against_the_generator():
    def draws(low, high, shape, seed=5):
        return np.random.default_rng(seed).integers(low, high, size=shape)

    forms = [(lambda g: nerve.randint(10, (4,), generator=g), 0, 10),
             (lambda g: nerve.randint(3, 10, (4,), generator=g), 3, 10),
             (lambda g: nerve.randint(3, 10, size=(4,), generator=g), 3, 10),
             (lambda g: nerve.randint(10, size=(4,), generator=g), 0, 10),
             (lambda g: nerve.randint(low=3, high=10, size=(4,), generator=g), 3, 10),
             (lambda g: nerve.randint(high=10, size=(4,), generator=g), 0, 10),
             (lambda g: nerve.randint(3, high=10, size=[4], generator=g), 3, 10)]
    for make, low, high in forms:
        out = make(nerve.Generator().manual_seed(5))
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out.numpy(), draws(low, high, (4,)))
    assert nerve.randint(0, 2, (3,), dtype=nerve.float32).dtype == np.float32
    with pytest.raises(TypeError, match="missing size"):
        nerve.randint(5)
    with pytest.raises(RuntimeError, match="low < high"):
        nerve.randint(5, 5, (2,))
    assert nerve.randint_like(nerve.zeros(3, dtype=nerve.int64), 4).numpy().max() < 4
    assert nerve.randint_like(nerve.zeros(3), 2, 4).dtype == np.float32


def test_generator_streams_are_seeded_and_independent():
    g = nerve.Generator().manual_seed(42)
    assert g.initial_seed() == 42 and isinstance(g, np.random.Generator)
    state = g.get_state()
    a = nerve.randn(3, generator=g).numpy()
    np.testing.assert_array_equal(a, np.random.default_rng(42).standard_normal(3).astype(np.float32))
    g.set_state(state)
    np.testing.assert_array_equal(nerve.randn(3, generator=g).numpy(), a)
    nerve.manual_seed(0)
    shared = nerve.rand(2).numpy()
    nerve.manual_seed(0)
    nerve.rand(2, generator=nerve.Generator().manual_seed(1))     # an own generator leaves the shared one alone
    np.testing.assert_array_equal(nerve.rand(2).numpy(), shared)
    perm = nerve.randperm(6, generator=nerve.Generator().manual_seed(3))
    np.testing.assert_array_equal(perm.numpy(), np.random.default_rng(3).permutation(6))
    assert nerve.randperm(4, dtype=nerve.int32).dtype == np.int32
    assert g.seed() != 42
    with pytest.raises(TypeError, match="generator must be"):
        nerve.rand(2, generator=3)
    with pytest.raises(RuntimeError, match="only CPU generators"):
        nerve.Generator("cuda")


def test_new_methods_take_the_tensors_dtype_and_device():
    x = nerve.ones(2, dtype=nerve.float64)
    for t in (x.new_zeros(2, 3), x.new_zeros((2, 3)), x.new_ones([2, 3]), x.new_empty(2, 3), x.new_full((2, 3), 7)):
        assert t.shape == (2, 3) and t.dtype == np.float64 and t.device == "cpu"
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0] and x.new_zeros(2).tolist() == [0.0, 0.0]
    assert x.new_ones(1, dtype=nerve.int64).dtype == np.int64
    assert x.new_zeros(2, requires_grad=True).requires_grad
    a = np.array([1, 2])
    t = x.new_tensor(a)
    a[0] = 9
    assert t.tolist() == [1.0, 2.0] and t.dtype == np.float64            # copied and cast, as PyTorch
    f = np.array([1.0, 2.0])
    same = x.new_tensor(f)
    f[0] = 9.0
    assert same.tolist() == [1.0, 2.0]                                    # copied even when no cast is needed
    assert x.new_tensor([1, 2], dtype=nerve.int64).dtype == np.int64
