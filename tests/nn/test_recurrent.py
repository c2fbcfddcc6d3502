"""Recurrent cells and layers (nn.RNN, LSTM, GRU): stacked bidirectional layers against a plain NumPy reference (one
sequence at a time, step by step), gradient checks, padding, truncated BPTT, the layer API, and CharRNN. The op
itself (recurrent_layer, its kernel and reference) is tested in tests/ops/test_recurrent.py."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.models import CharRNN
from tests.helpers import ref_rnn_layer

RNG = np.random.default_rng(7)


def T(a, grad=True):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


@pytest.mark.parametrize("cls, mode", [(nn.LSTM, "lstm"), (nn.GRU, "gru"), (nn.RNN, "rnn_tanh")])
def test_stacked_bidirectional_matches_reference(cls, mode):
    """Two bidirectional layers, batch_first, initial states, lengths: forward against the reference."""
    m = cls(3, 4, num_layers=2, bidirectional=True, batch_first=True).to(nerve.float64)
    B, T_ = 3, 5
    lengths = np.array([5, 3, 1])
    mask = np.arange(T_)[:, None] < lengths
    x = RNG.standard_normal((B, T_, 3))
    h0, c0 = RNG.standard_normal((4, B, 4)), RNG.standard_normal((4, B, 4))
    hx = (T(h0), T(c0)) if mode == "lstm" else T(h0)
    out, state = m(T(x), hx, lengths=lengths)
    layer_in = x.transpose(1, 0, 2)
    hs, cs = [], []
    for layer in range(2):
        outs = []
        for d in range(2):
            params = [p.numpy() for p in m.all_weights[2 * layer + d]]
            o, h, c, _ = ref_rnn_layer(mode, layer_in, params, h0[2 * layer + d], c0[2 * layer + d], mask, d == 1)
            outs.append(o)
            hs.append(h)
            cs.append(c)
        layer_in = np.concatenate(outs, -1)
    np.testing.assert_allclose(out.numpy(), layer_in.transpose(1, 0, 2), rtol=1e-12, atol=1e-14)
    h_n = state[0] if mode == "lstm" else state
    np.testing.assert_allclose(h_n.numpy(), np.array(hs), rtol=1e-12, atol=1e-14)
    if mode == "lstm":
        np.testing.assert_allclose(state[1].numpy(), np.array(cs), rtol=1e-12, atol=1e-14)


# --- gradient checks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_gradcheck_cells(kind):
    if kind == "lstm":
        cell = nn.LSTMCell(3, 2).to(nerve.float64)
    elif kind == "gru":
        cell = nn.GRUCell(3, 2).to(nerve.float64)
    else:
        cell = nn.RNNCell(3, 2, nonlinearity=kind[4:]).to(nerve.float64)
    x, h, c = T(RNG.standard_normal((2, 3))), T(RNG.standard_normal((2, 2))), T(RNG.standard_normal((2, 2)))
    params = list(cell.parameters())
    if kind == "lstm":
        nerve.gradcheck(lambda x, h, c, *p: cell(x, (h, c)), [x, h, c, *params])
    else:
        nerve.gradcheck(lambda x, h, *p: cell(x, h), [x, h, *params])


def _flat_outputs(out, state):
    states = state if isinstance(state, tuple) else (state,)
    return nerve.ops.cat([out.reshape(-1)] + [s.reshape(-1) for s in states])


@pytest.mark.parametrize("cls, kw", [(nn.LSTM, {}), (nn.GRU, {}), (nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"})])
def test_gradcheck_stacked_bidirectional_with_states_and_lengths(cls, kw):
    m = cls(2, 2, num_layers=2, bidirectional=True, **kw).to(nerve.float64)
    x = T(RNG.standard_normal((3, 2, 2)))
    h0, c0 = T(RNG.standard_normal((4, 2, 2))), T(RNG.standard_normal((4, 2, 2)))
    lstm = cls is nn.LSTM

    def fn(x, h0, c0, *params):
        return _flat_outputs(*m(x, (h0, c0) if lstm else h0, lengths=[3, 2]))
    nerve.gradcheck(fn, [x, h0, c0 if lstm else T(np.zeros(1), False), *m.parameters()])


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_gradcheck_mask_with_holes_batch_first(mode):
    """A mask need not be a suffix: masked steps anywhere keep the state and output zeros."""
    m = (nn.LSTM if mode == "lstm" else nn.GRU)(2, 3, batch_first=True, bidirectional=True).to(nerve.float64)
    x = T(RNG.standard_normal((2, 4, 2)))
    mask = np.array([[True, False, True, True], [False, True, True, False]])
    out, _ = m(x, mask=mask)
    assert np.all(out.numpy()[~mask] == 0)
    nerve.gradcheck(lambda x, *p: _flat_outputs(*m(x, mask=mask)), [x, *m.parameters()])


def test_second_derivatives_through_the_fused_layer():
    m = nn.LSTM(2, 2).to(nerve.float64)
    x, h0 = T(RNG.standard_normal((2, 1, 2))), T(RNG.standard_normal((1, 1, 2)))
    nerve.gradgradcheck(lambda x, h0: m(x, (h0, h0 * 0.5))[0], [x, h0])


# --- semantics --------------------------------------------------------------------------------------------
def test_padding_never_changes_the_real_steps():
    """Each sequence of a padded batch (NaN in the padding) gives what it gives alone, gradients included."""
    m = nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True).to(nerve.float64)
    seqs = [RNG.standard_normal((n, 3)) for n in (5, 2, 4)]
    padded = np.full((3, 5, 3), np.nan)
    for b, s in enumerate(seqs):
        padded[b, :len(s)] = s
    x = T(padded)
    out, h_n = m(x, lengths=[5, 2, 4])
    (out.sum() + h_n.sum()).backward()
    grads = {n: p.grad.numpy().copy() for n, p in m.named_parameters()}
    m.zero_grad()  # the per-sequence runs below accumulate their gradients: they must sum to the batch's
    for b, s in enumerate(seqs):
        xb = T(s[None])
        ob, hb = m(xb)
        np.testing.assert_allclose(out.numpy()[b, :len(s)], ob.numpy()[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(out.numpy()[b, len(s):], 0.0)
        np.testing.assert_allclose(h_n.numpy()[:, b], hb.numpy()[:, 0], rtol=1e-12, atol=1e-14)
        (ob.sum() + hb.sum()).backward()
        np.testing.assert_allclose(x.grad.numpy()[b, :len(s)], xb.grad.numpy()[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(x.grad.numpy()[b, len(s):], 0.0)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(grads[n], p.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_truncated_bptt_with_detached_state():
    """Chunks fed the previous chunk's detached state give the full run's outputs; gradients stop at the cut."""
    m = nn.LSTM(2, 3, num_layers=2, batch_first=True).to(nerve.float64)
    x = T(RNG.standard_normal((2, 8, 2)))
    full, (h_full, c_full) = m(x)
    state, outs = None, []
    for start in (0, 4):
        chunk = x[:, start:start + 4]
        out, state = m(chunk, state)
        outs.append(out.numpy())
        if start == 4:
            out[:, -1].sum().backward()
        state = CharRNN.detach_state(state)
        assert not state[0].requires_grad and not state[1].requires_grad
    np.testing.assert_allclose(np.concatenate(outs, 1), full.numpy(), rtol=1e-12)
    np.testing.assert_allclose(state[0].numpy(), h_full.numpy(), rtol=1e-12)
    np.testing.assert_allclose(state[1].numpy(), c_full.numpy(), rtol=1e-12)
    g = x.grad.numpy()
    assert np.all(g[:, :4] == 0) and np.abs(g[:, 4:]).min() > 0


def test_lstm_keeps_the_gradient_a_tanh_rnn_loses():
    """Long-memory task (recall the first of 100 noise inputs at the last step): the gradient of that loss
    reaches the first input of an LSTM (forget-gate bias 1, the usual initialisation) but vanishes in a tanh
    RNN of the same size, whose backward multiplies 100 contracting Jacobians."""
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 100, 1))
    ratios = {}
    for cls in (nn.LSTM, nn.RNN):
        rnn, head = cls(1, 16, batch_first=True).to(nerve.float64), nn.Linear(16, 1).to(nerve.float64)
        if cls is nn.LSTM:
            with nerve.no_grad():
                rnn.bias_ih_l0.data[16:32] = 1.0
                rnn.bias_hh_l0.data[16:32] = 1.0
        xt = T(x)
        out, _ = rnn(xt)
        F.mse_loss(head(out[:, -1]), T(x[:, 0], False)).backward()
        g = np.abs(xt.grad.numpy()).mean(axis=0)[:, 0]
        ratios[cls.__name__] = g[0] / g[-1]
    assert ratios["LSTM"] > 1e-4, ratios
    assert ratios["RNN"] < 1e-12, ratios


def test_gru_learns_a_sequence_task():
    """Sign of the sum of 12 inputs: a GRU classifies it after a few hundred Adam steps."""
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)
    gru, head = nn.GRU(1, 8, batch_first=True), nn.Linear(8, 2)
    opt = nerve.optim.Adam(list(gru.parameters()) + list(head.parameters()), lr=0.02)

    def batch(n):
        x = rng.standard_normal((n, 12, 1)).astype(np.float32)
        return nerve.tensor(x), nerve.tensor((x.sum(axis=(1, 2)) > 0).astype(np.int64))
    for _ in range(150):
        x, y = batch(64)
        loss = F.cross_entropy(head(gru(x)[1][0]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(500)
    accuracy = (head(gru(x)[1][0]).numpy().argmax(1) == y.numpy()).mean()
    assert accuracy > 0.9, accuracy


# --- layer API ----------------------------------------------------------------------------------------------
def test_parameter_names_shapes_and_init():
    m = nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert list(shapes)[:8] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
                                "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse"]
    assert shapes["weight_ih_l0"] == (80, 10) and shapes["weight_ih_l1"] == (80, 40)
    assert shapes["weight_hh_l1_reverse"] == (80, 20) and shapes["bias_hh_l1_reverse"] == (80,)
    assert sum(p.numel() for p in m.parameters()) == 2 * (80 * 10 + 80 * 20 + 160) + 2 * (80 * 40 + 80 * 20 + 160)
    bound = 1 / np.sqrt(20)
    values = np.concatenate([p.numpy().ravel() for p in m.parameters()])
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.95 * bound
    assert [n for n, _ in nn.GRU(3, 4, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert tuple(nn.GRUCell(3, 4).weight_hh.shape) == (12, 4) and tuple(nn.RNNCell(3, 4).bias_ih.shape) == (4,)
    copy = nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    copy.load_state_dict(m.state_dict())
    x = nerve.randn(4, 2, 10)
    np.testing.assert_array_equal(copy(x)[0].numpy(), m(x)[0].numpy())
    assert repr(m) == "LSTM(10, 20, num_layers=2, bidirectional=True)"


def test_shapes_unbatched_and_cells():
    gru = nn.GRU(3, 5, num_layers=2)
    out, h = gru(nerve.randn(7, 3))
    assert out.shape == (7, 5) and h.shape == (2, 5)
    out, h = gru(nerve.randn(7, 3), nerve.zeros(2, 5))
    assert out.shape == (7, 5) and h.shape == (2, 5)
    out, (h, c) = nn.LSTM(3, 5, batch_first=True, bidirectional=True)(nerve.randn(2, 7, 3))
    assert out.shape == (2, 7, 10) and h.shape == c.shape == (2, 2, 5)
    cell = nn.LSTMCell(3, 5)
    h, c = cell(nerve.randn(3))
    assert h.shape == c.shape == (5,)
    x = nerve.randn(4, 3)
    h, c = cell(x)
    h2, c2 = cell(x, (nerve.zeros(4, 5), nerve.zeros(4, 5)))
    np.testing.assert_array_equal(h.numpy(), h2.numpy())
    # a cell equals the layer run for one step with the same weights
    layer = nn.LSTM(3, 5)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    np.testing.assert_allclose(layer(x[None])[0].numpy()[0], h.numpy(), rtol=1e-6)


def test_dropout_between_layers_only_in_training():
    m = nn.GRU(3, 8, num_layers=2, dropout=0.5)
    x = nerve.randn(5, 2, 3)
    m.eval()
    a, b = m(x)[0].numpy(), m(x)[0].numpy()
    np.testing.assert_array_equal(a, b)
    m.train()
    assert not np.allclose(m(x)[0].numpy(), a)
    single = nn.GRU(3, 8, dropout=0.5)  # one layer: nothing between layers
    single.train()
    np.testing.assert_array_equal(single(x)[0].numpy(), single(x)[0].numpy())


def test_bad_input_errors():
    m = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match=r"LSTM\(3, 4\): expected input \(T, B, 3\)"):
        m(nerve.randn(5, 2, 2))
    with pytest.raises(ValueError, match=r"h_0 must have shape \(1, 2, 4\)"):
        m(nerve.randn(5, 2, 3), (nerve.zeros(1, 3, 4), nerve.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match=r"hx must be a tuple"):
        m(nerve.randn(5, 2, 3), nerve.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="dtype float64 but the weights are float32"):
        m(nerve.randn(5, 2, 3, dtype=nerve.float64))
    with pytest.raises(ValueError, match="sequence is empty"):
        m(nerve.randn(0, 2, 3))
    with pytest.raises(ValueError, match="lengths or mask, not both"):
        m(nerve.randn(5, 2, 3), lengths=[5, 5], mask=np.ones((5, 2), bool))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        m(nerve.randn(5, 2, 3), lengths=[6, 1])
    with pytest.raises(ValueError, match="expected 2 lengths"):
        m(nerve.randn(5, 2, 3), lengths=[5])
    with pytest.raises(ValueError, match=r"mask must have the input's first two dims \(5, 2\)"):
        m(nerve.randn(5, 2, 3), mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match=r"GRUCell\(3, 4\): expected input \(batch, 3\)"):
        nn.GRUCell(3, 4)(nerve.randn(2, 4))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


# --- CharRNN ---------------------------------------------------------------------------------------------------
def test_char_rnn_shapes_loss_and_generate():
    chars = "abcdefgh"
    model = CharRNN(len(chars), embedding_dim=6, hidden_size=10, num_layers=2, cell="gru", chars=chars)
    ids = nerve.tensor(RNG.integers(0, 8, (3, 5)))
    logits = model(ids)
    assert logits.shape == (3, 5, 8)
    logits, state = model(ids, return_state=True)
    assert state.shape == (2, 3, 10)
    loss = CharRNN.loss(logits, ids)
    assert abs(loss.item() - np.log(8)) < 0.5
    text = model.generate("abc", 20, temperature=0.8, top_k=3, generator=1)
    assert len(text) == 23 and text.startswith("abc") and set(text) <= set(chars)
    assert model.generate("abc", 20, temperature=0.8, top_k=3, generator=1) == text
    nerve.manual_seed(5)
    first = model.generate("a", 15)
    nerve.manual_seed(5)
    assert model.generate("a", 15) == first
    greedy = model.generate([0, 1], 6, temperature=0)
    assert greedy.dtype == np.int64 and greedy.shape == (8,) and greedy[:2].tolist() == [0, 1]
    top1 = model.generate("a", 6, top_k=1, generator=0)
    assert top1 == model.generate("a", 6, temperature=0)  # top-1 sampling is greedy
    assert model.training  # generate restores the mode
    config = model.get_config()
    assert config["chars"] == chars and CharRNN(**config).get_config() == config
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['z'\]"):
        model.generate("az", 3)
    with pytest.raises(ValueError, match="prompt is empty"):
        model.generate("", 3)


def test_char_rnn_learns_a_repeating_text():
    """A short periodic text: a small LSTM language model drives its loss far below uniform."""
    from nerve.data.text import CharVocab, random_windows
    text = "hello world. " * 40
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    nerve.manual_seed(0)
    model = CharRNN(vocab.size, embedding_dim=8, hidden_size=32, chars=vocab.chars)
    opt = nerve.optim.Adam(model.parameters(), lr=0.02)
    gen = np.random.default_rng(0)
    for _ in range(60):
        x, y = random_windows(ids, 16, 16, gen)
        loss = CharRNN.loss(model(nerve.tensor(x)), nerve.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3, loss.item()
    assert model.generate("hello", 10, temperature=0) == "hello world. he"
