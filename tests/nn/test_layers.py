"""Layers: output shape, parameter count, state-dict round trip, NumPy reference, gradients, a task,
bad input."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn

RNG = np.random.default_rng(1)
F64 = nerve.float64


def T(a, requires_grad=False):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def round_trip(layer, make, x):
    """A second layer loaded from the first's state dict computes the same outputs."""
    twin = make()
    twin.load_state_dict(layer.state_dict())
    layer.eval()
    twin.eval()
    np.testing.assert_array_equal(layer(x).numpy(), twin(x).numpy())


# --- Linear -------------------------------------------------------------------------------------------
def test_linear_shape_params_reference_and_round_trip():
    make = lambda: nn.Linear(5, 3, dtype=F64)  # noqa: E731
    fc = make()
    assert n_params(fc) == 5 * 3 + 3 and n_params(nn.Linear(5, 3, bias=False)) == 15
    x = RNG.standard_normal((2, 4, 5))
    out = fc(T(x))
    assert out.shape == (2, 4, 3)
    w, b = fc.weight.numpy(), fc.bias.numpy()
    want = np.zeros((2, 4, 3))
    for i, j, o in np.ndindex(2, 4, 3):
        want[i, j, o] = sum(x[i, j, k] * w[o, k] for k in range(5)) + b[o]
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    assert nn.Linear(5, 3, bias=False, dtype=F64)(T(x)).shape == (2, 4, 3)
    assert fc(T(np.zeros((0, 5)))).shape == (0, 3)
    round_trip(fc, make, T(x))


def test_linear_gradients():
    args = [T(RNG.standard_normal(s), True) for s in [(3, 4), (2, 4), (2,)]]
    assert nerve.gradcheck(F.linear, args) and nerve.gradgradcheck(F.linear, args)
    batched = [T(RNG.standard_normal((2, 3, 4)), True), args[1]]
    assert nerve.gradcheck(F.linear, batched) and nerve.gradgradcheck(F.linear, batched)
    vector = [T(RNG.standard_normal(4), True), args[1], args[2]]
    assert nerve.gradcheck(F.linear, vector)


def test_linear_bad_input():
    fc = nn.Linear(784, 128)
    with pytest.raises(ValueError) as info:
        fc(nerve.zeros(32, 28, 28))
    assert str(info.value) == "Linear(784 -> 128): expected input (..., 784), got (32, 28, 28)"
    with pytest.raises(TypeError, match=r"\(784 -> 128\): input has dtype float64 but the weights are"):
        fc(nerve.zeros(2, 784, dtype=F64))
    with pytest.raises(ValueError, match=r"linear: input \(2, 3\) does not match weight \(4, 5\)"):
        F.linear(nerve.zeros(2, 3), nerve.zeros(4, 5))


def test_mlp_learns_xor_with_plain_gradient_descent():
    nerve.manual_seed(0)
    x = nerve.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = nerve.tensor([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(300):
        loss = loss_fn(model(x), y)
        model.zero_grad()
        loss.backward()
        with nerve.no_grad():
            for p in model.parameters():
                p -= p.grad * 0.5
    assert loss.item() < 0.05
    assert model(x).numpy().argmax(1).tolist() == [0, 1, 1, 0]


# --- Flatten / Unflatten / activations --------------------------------------------------------------
def test_flatten_unflatten():
    x = nerve.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60) and nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    back = nn.Unflatten(1, (3, 20))(nn.Flatten()(x))
    assert back.shape == (2, 3, 20)
    np.testing.assert_array_equal(back.numpy().reshape(x.shape), x.numpy())
    assert nn.Unflatten(-1, (-1, 4))(nerve.zeros(2, 12)).shape == (2, 3, 4)
    assert n_params(nn.Flatten()) == 0 and nn.Flatten().state_dict() == {}
    with pytest.raises(ValueError, match=r"dimension 1 of input \(2, 30\) has size 30, which does not split"):
        nn.Unflatten(1, (4, 8))(nerve.zeros(2, 30))


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(0.7), lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
    (nn.GELU(), lambda x: x * 0.5 * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2)))),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.Softmax(1), lambda x: _np_softmax(x, 1)),
    (nn.LogSoftmax(), lambda x: np.log(_np_softmax(x, -1))),
    (nn.Softplus(2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
]


@pytest.mark.parametrize("module,ref", ACTIVATIONS, ids=lambda v: repr(v) if isinstance(v, nn.Module) else "")
def test_activation_modules(module, ref):
    x = RNG.uniform(-3, 3, (4, 5))
    x[np.abs(x) < 0.05] = 0.5  # away from kinks
    out = module(T(x))
    assert out.shape == x.shape and n_params(module) == 0 and module.state_dict() == {}
    np.testing.assert_allclose(out.numpy(), ref(x), rtol=1e-10, atol=1e-12)
    assert nerve.gradcheck(module, [T(x, True)])


def test_activation_settings_in_repr_and_config():
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert nn.GELU("tanh").get_config() == {"approximate": "tanh"}
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")
    nn.ReLU(inplace=True)  # accepted for PyTorch compatibility


# --- Dropout ------------------------------------------------------------------------------------------
def test_dropout_mask_scale_modes_and_generators():
    x = nerve.ones(200, 100)
    layer = nn.Dropout(0.3)
    out = layer(x).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    layer.eval()
    assert layer(x) is x
    assert F.dropout(x, 0.0) is x and np.all(F.dropout(x, 1.0).numpy() == 0)
    a = nn.Dropout(0.5, generator=np.random.default_rng(4))(x).numpy()
    b = nn.Dropout(0.5, generator=np.random.default_rng(4))(x).numpy()
    np.testing.assert_array_equal(a, b)
    nerve.manual_seed(9)
    c = F.dropout(x, 0.5).numpy()
    nerve.manual_seed(9)
    np.testing.assert_array_equal(c, F.dropout(x, 0.5).numpy())
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


def test_dropout_gradient_uses_the_same_mask():
    x = T(RNG.standard_normal((6, 5)), True)
    assert nerve.gradcheck(lambda t: F.dropout(t, 0.4, generator=np.random.default_rng(0)), [x])
    out = F.dropout(x, 0.4)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (out.numpy() != 0) / 0.6)


def test_dropout_network_still_learns():
    nerve.manual_seed(1)
    x = nerve.randn(64, 4)
    y = nerve.tensor((x.numpy() @ np.array([1.0, -2.0, 0.5, 1.5]) > 0).astype(np.int64))
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 2))
    for _ in range(150):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        with nerve.no_grad():
            for p in model.parameters():
                p -= p.grad * 0.3
    model.eval()
    assert (model(x).numpy().argmax(1) == y.numpy()).mean() > 0.95


# --- BatchNorm1d ---------------------------------------------------------------------------------------
def ref_batch_norm(x, w, b, eps):
    axes = (0,) if x.ndim == 2 else (0, 2)
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape)
    return out, mean.reshape(-1), var.reshape(-1)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
def test_batch_norm_training_eval_and_running_statistics(shape):
    make = lambda: nn.BatchNorm1d(3, momentum=0.2, dtype=F64)  # noqa: E731
    bn = make()
    assert n_params(bn) == 6
    with nerve.no_grad():
        bn.weight.copy_(RNG.uniform(0.5, 2, 3))
        bn.bias.copy_(RNG.standard_normal(3))
    running_mean, running_var = np.zeros(3), np.ones(3)
    n = shape[0] * (shape[2] if len(shape) == 3 else 1)
    for _ in range(3):
        x = RNG.standard_normal(shape) * 3 + 2
        want, mean, var = ref_batch_norm(x, bn.weight.numpy(), bn.bias.numpy(), 1e-5)
        np.testing.assert_allclose(bn(T(x)).numpy(), want, rtol=1e-10, atol=1e-12)
        running_mean = 0.8 * running_mean + 0.2 * mean
        running_var = 0.8 * running_var + 0.2 * var * n / (n - 1)
    np.testing.assert_allclose(bn.running_mean.numpy(), running_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), running_var, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 3
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    bn.eval()
    x = RNG.standard_normal(shape)
    shape_c = (1, -1) if len(shape) == 2 else (1, -1, 1)
    want = ((x - running_mean.reshape(shape_c)) / np.sqrt(running_var.reshape(shape_c) + 1e-5)
            * bn.weight.numpy().reshape(shape_c) + bn.bias.numpy().reshape(shape_c))
    np.testing.assert_allclose(bn(T(x)).numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), running_mean)  # eval leaves the statistics alone
    round_trip(bn, make, T(x))


def test_batch_norm_options():
    x = T(RNG.standard_normal((6, 2)) * 4 + 1)
    cumulative = nn.BatchNorm1d(2, momentum=None, dtype=F64)
    batches = [RNG.standard_normal((6, 2)) + i for i in range(3)]
    for b in batches:
        cumulative(T(b))
    np.testing.assert_allclose(cumulative.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0))
    plain = nn.BatchNorm1d(2, affine=False, track_running_stats=False, dtype=F64)
    assert n_params(plain) == 0 and plain.state_dict() == {}
    plain.eval()  # without running statistics, eval normalises with the batch's
    np.testing.assert_allclose(plain(x).numpy(), ref_batch_norm(x.numpy(), np.ones(2), np.zeros(2), 1e-5)[0])


def test_batch_norm_gradients():
    w, b = T(RNG.uniform(0.5, 2, 3), True), T(RNG.standard_normal(3), True)
    for shape in [(5, 3), (3, 3, 2)]:
        x = T(RNG.standard_normal(shape), True)

        def train_fn(x, w, b):
            return F.batch_norm(x, None, None, w, b, training=True)
        assert nerve.gradcheck(train_fn, [x, w, b]) and nerve.gradgradcheck(train_fn, [x, w, b])
        rm, rv = T(RNG.standard_normal(3)), T(RNG.uniform(0.5, 2, 3))
        assert nerve.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b), [x, w, b])


def test_batch_norm_normalises_and_learns_running_statistics():
    nerve.manual_seed(2)
    bn = nn.BatchNorm1d(4)
    data = np.random.default_rng(5).normal([1.0, -2.0, 3.0, 0.5], [2.0, 0.5, 1.0, 3.0], size=(200, 64, 4))
    for batch in data:
        out = bn(nerve.tensor(batch.astype(np.float32))).numpy()
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean.numpy(), [1.0, -2.0, 3.0, 0.5], atol=0.15)
    np.testing.assert_allclose(np.sqrt(bn.running_var.numpy()), [2.0, 0.5, 1.0, 3.0], rtol=0.06)


def test_batch_norm_bad_input():
    bn = nn.BatchNorm1d(16)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(16\): expected input \(N, 16\) or \(N, 16, L\), "
                                         r"got \(32, 8\)"):
        bn(nerve.zeros(32, 8))
    with pytest.raises(ValueError, match="expected more than 1 value per channel when training"):
        bn(nerve.zeros(1, 16))
    bn.eval()
    assert bn(nerve.zeros(1, 16)).shape == (1, 16)


# --- LayerNorm -----------------------------------------------------------------------------------------
def ref_layer_norm(x, w, b, k, eps=1e-5):
    out = np.empty_like(x)
    size = int(np.prod(x.shape[x.ndim - k:]))
    rows, flat = x.reshape(-1, size), out.reshape(-1, size)
    for i, row in enumerate(rows):
        mean = sum(row) / len(row)
        var = sum((v - mean) ** 2 for v in row) / len(row)
        flat[i] = [(v - mean) / np.sqrt(var + eps) for v in row]
    return out * w + b


@pytest.mark.parametrize("normalized_shape", [5, (3, 5)])
def test_layer_norm_reference_params_round_trip(normalized_shape):
    make = lambda: nn.LayerNorm(normalized_shape, dtype=F64)  # noqa: E731
    ln = make()
    k = 1 if isinstance(normalized_shape, int) else 2
    assert n_params(ln) == 2 * int(np.prod(normalized_shape))
    with nerve.no_grad():
        ln.weight.copy_(RNG.uniform(0.5, 2, ln.weight.shape))
        ln.bias.copy_(RNG.standard_normal(ln.weight.shape))
    x = RNG.standard_normal((2, 3, 5)) * 3 + 1
    out = ln(T(x))
    assert out.shape == x.shape
    want = ref_layer_norm(x, ln.weight.numpy(), ln.bias.numpy(), k)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10)
    round_trip(ln, make, T(x))
    bare = nn.LayerNorm(5, elementwise_affine=False, dtype=F64)
    assert n_params(bare) == 0
    normed = bare(T(x)).numpy()
    np.testing.assert_allclose(normed.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(normed.var(-1), 1, rtol=1e-4)
    assert n_params(nn.LayerNorm(5, bias=False)) == 5


def test_layer_norm_gradients():
    x = T(RNG.standard_normal((3, 4)), True)
    w, b = T(RNG.uniform(0.5, 2, 4), True), T(RNG.standard_normal(4), True)
    fn = lambda x, w, b: F.layer_norm(x, 4, w, b)  # noqa: E731
    assert nerve.gradcheck(fn, [x, w, b]) and nerve.gradgradcheck(fn, [x, w, b])
    x3 = T(RNG.standard_normal((2, 2, 3)), True)
    assert nerve.gradcheck(lambda x: F.layer_norm(x, (2, 3)), [x3])
    assert nerve.gradgradcheck(lambda x: F.layer_norm(x, (2, 3)), [x3])


def test_layer_norm_bad_input():
    with pytest.raises(ValueError, match=r"LayerNorm\(\(64,\)\): expected input \(..., 64\), got \(32, 32\)"):
        nn.LayerNorm(64)(nerve.zeros(32, 32))


# --- Embedding -------------------------------------------------------------------------------------------
def test_embedding_lookup_padding_and_round_trip():
    make = lambda: nn.Embedding(10, 4, padding_idx=0, dtype=F64)  # noqa: E731
    emb = make()
    assert n_params(emb) == 40 and np.all(emb.weight.numpy()[0] == 0)
    idx = np.array([[1, 0, 3], [3, 9, 0]])
    out = emb(nerve.tensor(idx))
    assert out.shape == (2, 3, 4)
    table = emb.weight.numpy()
    np.testing.assert_array_equal(out.numpy(), np.stack([[table[i] for i in row] for row in idx]))
    g = RNG.standard_normal(out.shape)
    out.backward(nerve.tensor(g))
    want = np.zeros((10, 4))
    for (i, j), k in np.ndenumerate(idx):
        if k != 0:
            want[k] += g[i, j]
    np.testing.assert_allclose(emb.weight.grad.numpy(), want, rtol=1e-12)
    round_trip(emb, make, nerve.tensor(idx))
    frozen = nn.Embedding.from_pretrained(nerve.tensor(table))
    assert not frozen.weight.requires_grad and np.array_equal(frozen(nerve.tensor(idx)).numpy(), out.numpy())


def test_embedding_gradients():
    idx = np.array([[2, 0], [2, 4]])  # repeated rows sum their gradients
    w = T(RNG.standard_normal((5, 3)), True)
    fn = lambda w: F.embedding(idx, w) * 1.5  # noqa: E731
    assert nerve.gradcheck(fn, [w]) and nerve.gradgradcheck(fn, [w])
    F.embedding(idx, w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1, 0, 0, 0, 1])  # the padding row gets nothing


def test_embedding_learns_a_lookup():
    nerve.manual_seed(3)
    model = nn.Sequential(nn.Embedding(8, 6), nn.Linear(6, 8))
    ids = nerve.arange(8)
    for _ in range(100):
        loss = F.cross_entropy(model(ids), ids)
        model.zero_grad()
        loss.backward()
        with nerve.no_grad():
            for p in model.parameters():
                p -= p.grad * 1.0
    assert model(ids).numpy().argmax(1).tolist() == list(range(8))


def test_embedding_bad_input():
    emb = nn.Embedding(1000, 64)
    with pytest.raises(IndexError, match=r"Embedding\(1000, 64\): index 1005 is out of range for 1000"):
        emb(nerve.tensor([3, 1005]))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        emb(nerve.tensor([-1]))
    with pytest.raises(TypeError, match="expected integer indices, got dtype float32"):
        emb(nerve.tensor([1.0]))
