"""A recurrent layer fed straight by an embedding (``nerve.ops.recurrent.LOOKUP``): the input products from the
table's product, W_ih's gradient summed by token, the input's gradient handed to the embedding as an unevaluated
``RowProduct`` (``nerve.autograd.deferred``). Every result against the same layer with the lookup turned off,
gradcheck / gradgradcheck in float64, the engine's evaluation of the product wherever a user can see it, and
``row_sums`` against NumPy's ``add.at``."""
import importlib

import numpy as np
import pytest

import nerve
from nerve import nn, ops
from nerve.autograd.deferred import RowProduct
from nerve.ops import recurrent, streams
from tests.ops.test_streams import training_bytes_growth

embedding_ops = importlib.import_module("nerve.ops.embedding")
RNG = np.random.default_rng(0)


@pytest.fixture
def spy(monkeypatch):
    """The layers' lookups taken (the tables' shapes) and the embeddings' rules handed a product."""
    seen = {"lookups": [], "products": 0}
    forward = recurrent.RecurrentLayer.forward
    backward = embedding_ops.Embedding.backward

    def spy_forward(self, *args, lookup=None):
        if lookup is not None:
            seen["lookups"].append(lookup[0].shape)
        return forward(self, *args, lookup=lookup)

    def spy_backward(self, g, m):
        seen["products"] += g.__class__ is RowProduct
        return backward(self, g, m)
    monkeypatch.setattr(recurrent.RecurrentLayer, "forward", spy_forward)
    monkeypatch.setattr(embedding_ops.Embedding, "backward", spy_backward)
    return seen


def _run(lookup, cell="LSTM", batch_first=True, dtype="float64", padding_idx=None, tokens=(3, 8), vocab=7,
         observe=None, **layer):
    """Output and every gradient of embedding -> layer -> a loss, with the lookup on or off; ``observe(x)`` may
    hook the embedding's output or use it again, and returns what it saw."""
    recurrent.LOOKUP = lookup
    try:
        nerve.manual_seed(0)
        emb = nn.Embedding(vocab, 5, padding_idx=padding_idx, dtype=dtype)
        rnn = getattr(nn, cell)(5, 6, batch_first=batch_first, dtype=dtype, **layer)
        idx = np.random.default_rng(1).integers(0, vocab, tokens)
        x = emb(nerve.tensor(idx))
        extra = observe(x) if observe else None
        y, _ = rnn(x)
        loss = (y * y).sum()
        if extra is not None and isinstance(extra, nerve.Tensor):
            loss = loss + extra
        loss.backward()
        return [y.data, emb.weight.grad.data] + [p.grad.data for p in rnn.parameters()], x
    finally:
        recurrent.LOOKUP = True


def _assert_same(a, b, tol):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lookup_equals_products_per_position(cell, batch_first, dtype, spy):
    got, _ = _run(True, cell, batch_first, dtype, tokens=(3, 8) if batch_first else (8, 3))
    assert spy["lookups"] == [(7, 5)] and spy["products"] == 1
    want, _ = _run(False, cell, batch_first, dtype, tokens=(3, 8) if batch_first else (8, 3))
    assert len(spy["lookups"]) == 1 and spy["products"] == 1
    _assert_same(got, want, 1e-12 if dtype == "float64" else 2e-5)


def test_relu_rnn_padding_row_and_two_layers_both_directions(spy):
    """The padding row gets no gradient; a second layer and the backward direction of a bidirectional layer
    (its gradients meet the forward direction's at the embedding, so the products are evaluated there)."""
    for kw in (dict(padding_idx=2, cell="RNN", nonlinearity="relu"), dict(num_layers=2, bidirectional=True)):
        got, _ = _run(True, **kw)
        want, _ = _run(False, **kw)
        _assert_same(got, want, 1e-12)
    assert spy["lookups"] == [(7, 5)] * 3  # the first layer's directions only
    assert not np.any(_run(True, padding_idx=2)[0][1][2])


@pytest.mark.parametrize("how", ["hook", "retain_grad", "used again", "grad"])
def test_the_inputs_gradient_is_evaluated_where_a_user_sees_it(how, spy):
    """A hook, retain_grad, a second use of the embedding's output, or autograd.grad at it: the user sees the
    same gradient as without the lookup (the engine evaluates the product)."""
    def observe(store):
        def fn(x):
            if how == "hook":
                x.register_hook(lambda g: store.append(g.data.copy()))
            elif how == "retain_grad":
                x.retain_grad()
                store.append(x)
            elif how == "used again":
                return (x * x).sum()
        return fn
    if how == "grad":
        seen = []
        for lookup in (True, False):
            recurrent.LOOKUP = lookup
            try:
                emb = nn.Embedding(7, 5, dtype="float64")
                nerve.manual_seed(0)
                emb.reset_parameters()
                rnn = nn.LSTM(5, 6, batch_first=True, dtype="float64")
                x = emb(nerve.tensor(np.arange(24).reshape(3, 8) % 7))
                y, _ = rnn(x)
                seen.append([g.data for g in nerve.autograd.grad((y * y).sum(), [x, emb.weight])])
            finally:
                recurrent.LOOKUP = True
        _assert_same(seen[0], seen[1], 1e-12)
        return
    store_a, store_b = [], []
    got, xa = _run(True, observe=observe(store_a))
    want, xb = _run(False, observe=observe(store_b))
    _assert_same(got, want, 1e-12)
    if how == "hook":
        _assert_same(store_a, store_b, 1e-12)
    elif how == "retain_grad":
        np.testing.assert_allclose(store_a[0].grad.data, store_b[0].grad.data, rtol=1e-12, atol=1e-12)
    assert spy["products"] == 0  # the embedding's rule got an array each time


def test_no_lookup_for_a_large_table_a_mask_or_a_frozen_table(spy):
    _run(True, vocab=13, tokens=(3, 8))  # 2 x 13 rows > 24 positions: the positions' products are cheaper
    recurrent.LOOKUP = True
    emb = nn.Embedding(4, 5, dtype="float64")
    rnn = nn.LSTM(5, 6, batch_first=True, dtype="float64")
    x = emb(nerve.tensor(np.arange(24).reshape(3, 8) % 4))
    y, _ = rnn(x, lengths=[8, 5, 2])
    y.sum().backward()
    frozen = nn.Embedding.from_pretrained(emb.weight.detach())
    y, _ = rnn(frozen(nerve.tensor(np.arange(24).reshape(3, 8) % 4)))
    y.sum().backward()
    assert spy["lookups"] == []


def test_gradcheck_and_gradgradcheck_through_the_lookup(spy):
    idx = RNG.integers(0, 4, (2, 9))

    def fn(table, w_ih, w_hh, b_ih, b_hh):
        out, (h, c) = ops.recurrent_layer("lstm", ops.embedding(idx, table), w_ih, w_hh, b_ih, b_hh, batch_first=True)
        return out.square().sum() + h.sum() + c.square().sum()
    inputs = [nerve.tensor(RNG.standard_normal(s) * 0.5, requires_grad=True)
              for s in [(4, 3), (8, 3), (8, 2), (8,), (8,)]]
    assert nerve.gradcheck(fn, inputs)
    assert spy["lookups"] and spy["products"]
    assert nerve.gradgradcheck(fn, inputs)


def test_row_sums_against_add_at(monkeypatch):
    rows = RNG.standard_normal((50, 33)).astype(np.float32)
    idx = RNG.integers(0, 6, 50)
    want = np.zeros((7, 33), np.float64)
    np.add.at(want, idx, rows.astype(np.float64))
    monkeypatch.setattr(streams, "SPLIT_FLOPS", 0)
    for threads in (None, 2):
        streams.set_threads(threads)  # (conftest gives back the mode the process started with)
        got = embedding_ops.row_sums(rows, idx, 7)
        assert got.dtype == np.float32 and got.shape == (7, 33)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(embedding_ops, "_state", {"k": None})  # numba missing
    np.testing.assert_allclose(embedding_ops.row_sums(rows, idx, 7), want, rtol=1e-5, atol=1e-5)


def test_memory_per_step_does_not_grow(spy):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.rnn = nn.Embedding(5, 4), nn.LSTM(4, 6, batch_first=True)

        def forward(self, idx):
            return self.rnn(self.emb(idx))[0]
    nerve.manual_seed(0)
    assert training_bytes_growth(Net(), nerve.tensor(RNG.integers(0, 5, (3, 10)))) == 0
    assert spy["lookups"] and spy["products"]


def test_a_product_reaching_a_rule_that_needs_values_is_evaluated():
    """A custom Function handing a RowProduct to an ordinary rule: the rule gets rows @ right."""
    rows, right = RNG.standard_normal((6, 3)), RNG.standard_normal((3, 2))

    class Lazy(nerve.autograd.Function):
        def forward(self, x):
            return x.copy()

        def backward(self, g, m):
            return RowProduct(rows, right, "C", (6, 2), lambda: rows @ right)
    x = nerve.tensor(RNG.standard_normal((6, 2)), requires_grad=True)
    y = x * 1.0
    Lazy.apply(y).sum().backward()
    np.testing.assert_allclose(x.grad.data, rows @ right)
