"""Transformer encoder/decoder layers and stacks, positional encodings: NumPy references computed step by step,
gradcheck in float64, PyTorch's names, copies in stacks, and a small task the encoder must learn."""
import math

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from tests.helpers import T, n_params, np_gelu, ref_mha

RNG = np.random.default_rng(11)


def ref_norm(x, m):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    out = (x - mu) / np.sqrt(var + m.eps) * m.weight.numpy()
    return out + (m.bias.numpy() if m.bias is not None else 0)


def ref_linear(x, m):
    return x @ m.weight.numpy().T + (m.bias.numpy() if m.bias is not None else 0)


def ref_ff(layer, x, act):
    return ref_linear(act(ref_linear(x, layer.linear1)), layer.linear2)


ACTS = {"relu": lambda h: np.maximum(h, 0), "gelu": np_gelu}


def ref_encoder_layer(layer, x, act, bias):
    """Batch-first (N, L, E) arrays."""
    sa = lambda h: ref_mha(layer.self_attn, h, h, h, bias)[0]  # noqa: E731
    if layer.norm_first:
        x = x + sa(ref_norm(x, layer.norm1))
        return x + ref_ff(layer, ref_norm(x, layer.norm2), act)
    x = ref_norm(x + sa(x), layer.norm1)
    return ref_norm(x + ref_ff(layer, x, act), layer.norm2)


def ref_decoder_layer(layer, x, mem, act, bias):
    sa = lambda h: ref_mha(layer.self_attn, h, h, h, bias)[0]  # noqa: E731
    ca = lambda h: ref_mha(layer.multihead_attn, h, mem, mem)[0]  # noqa: E731
    if layer.norm_first:
        x = x + sa(ref_norm(x, layer.norm1))
        x = x + ca(ref_norm(x, layer.norm2))
        return x + ref_ff(layer, ref_norm(x, layer.norm3), act)
    x = ref_norm(x + sa(x), layer.norm1)
    x = ref_norm(x + ca(x), layer.norm2)
    return ref_norm(x + ref_ff(layer, x, act), layer.norm3)


def _randomise(module):
    """Non-trivial norms and biases (they start at 1 and 0), so the comparison sees them."""
    for name, p in module.named_parameters():
        if p.ndim == 1:
            nn.init.normal_(p, mean=1.0 if "norm" in name else 0.0, std=0.5)
    return module


KPM = np.zeros((2, 4), bool)
KPM[0, 3] = True
CAUSAL = np.triu(np.ones((4, 4), bool), 1)
BIAS = np.where(CAUSAL, -np.inf, 0.0) + np.where(KPM, -np.inf, 0.0)[:, None, None, :]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_reference(norm_first, activation, batch_first):
    layer = _randomise(nn.TransformerEncoderLayer(6, 2, 10, dropout=0.0, activation=activation,
                                                  norm_first=norm_first, batch_first=batch_first).double())
    x = RNG.standard_normal((2, 4, 6))
    xt = T(x if batch_first else x.transpose(1, 0, 2))
    out = layer(xt, src_mask=CAUSAL, src_key_padding_mask=KPM).numpy()
    out = out if batch_first else out.transpose(1, 0, 2)
    np.testing.assert_allclose(out, ref_encoder_layer(layer, x, ACTS[activation], BIAS), rtol=1e-10, atol=1e-12)
    # is_causal gives the same as the explicit causal mask
    same = layer(xt, src_key_padding_mask=KPM, is_causal=True).numpy()
    np.testing.assert_allclose(same if batch_first else same.transpose(1, 0, 2), out, atol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_layer_matches_reference(norm_first, activation):
    layer = _randomise(nn.TransformerDecoderLayer(6, 3, 8, dropout=0.0, activation=activation, norm_first=norm_first,
                                                  batch_first=True).double())
    x, mem = RNG.standard_normal((2, 4, 6)), RNG.standard_normal((2, 5, 6))
    out = layer(T(x), T(mem), tgt_mask=CAUSAL, tgt_key_padding_mask=KPM).numpy()
    np.testing.assert_allclose(out, ref_decoder_layer(layer, x, mem, ACTS[activation], BIAS), rtol=1e-10, atol=1e-12)


def test_layers_gradcheck():
    enc = _randomise(nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation="gelu", batch_first=True).double())
    x = T(RNG.standard_normal((2, 3, 4)), True)
    assert nerve.gradcheck(lambda a, *p: enc(a, src_key_padding_mask=KPM[:, :3], is_causal=True),
                           [x] + list(enc.parameters()))
    dec = _randomise(nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, norm_first=True, batch_first=True).double())
    mem = T(RNG.standard_normal((2, 2, 4)), True)
    assert nerve.gradcheck(lambda a, b, *p: dec(a, b, tgt_is_causal=True), [x, mem] + list(dec.parameters()))
    assert nerve.gradgradcheck(lambda a: enc(a), [T(x.numpy()[:1, :2], True)])


def test_layer_names_and_config_follow_pytorch():
    layer = nn.TransformerDecoderLayer(8, 2, 16)
    names = [n for n, _ in layer.named_parameters()]
    assert names[:4] == ["self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                         "self_attn.out_proj.bias"]
    assert {"multihead_attn.in_proj_weight", "linear1.weight", "linear2.bias", "norm3.weight"} <= set(names)
    assert layer.get_config()["dim_feedforward"] == 16 and layer.activation is F.relu
    enc = nn.TransformerEncoderLayer(8, 2, bias=False, activation=F.gelu)
    assert enc.activation is F.gelu
    assert not any(n.endswith("bias") for n, _ in enc.named_parameters())
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a callable"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: expected src \(L, N, 8\)"):
        nn.TransformerEncoderLayer(8, 2)(nerve.randn(3, 4))


def test_custom_activation_and_dropout():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, activation=F.silu, batch_first=True)
    x = nerve.randn(2, 5, 8)
    assert not np.allclose(layer(x).numpy(), layer(x).numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), layer(x).numpy())


def test_stacks_copy_layers_and_apply_norm():
    layer = nn.TransformerEncoderLayer(6, 2, 8, dropout=0.0, batch_first=True)
    enc = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(6))
    assert len(enc.layers) == 3
    p0, p1 = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert p0 is not p1 and np.array_equal(p0.numpy(), p1.numpy())
    assert n_params(enc) == 3 * n_params(layer) + 12
    x = nerve.randn(2, 4, 6)
    want = x
    for sub in enc.layers:
        want = sub(want, src_key_padding_mask=KPM)
    np.testing.assert_allclose(enc(x, src_key_padding_mask=KPM).numpy(), enc.norm(want).numpy(), rtol=1e-6)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(6, 2, 8, dropout=0.0, batch_first=True), 2)
    out = dec(x, nerve.randn(2, 7, 6), tgt_is_causal=True)
    assert out.shape == (2, 4, 6)
    clone = nn.TransformerEncoder(nn.TransformerEncoderLayer(6, 2, 8, dropout=0.0, batch_first=True), 3,
                                  norm=nn.LayerNorm(6))
    clone.load_state_dict(enc.state_dict())
    np.testing.assert_array_equal(clone(x).numpy(), enc(x).numpy())


def test_sinusoidal_encoding():
    pe = nn.SinusoidalPositionalEncoding(6, max_len=10, batch_first=True)
    out = pe(nerve.zeros(2, 4, 6)).numpy()
    for p in range(4):
        for i in range(3):
            angle = p / 10000 ** (2 * i / 6)
            assert math.isclose(out[1, p, 2 * i], math.sin(angle), abs_tol=1e-6)
            assert math.isclose(out[1, p, 2 * i + 1], math.cos(angle), abs_tol=1e-6)
    odd = nn.SinusoidalPositionalEncoding(5, max_len=10)
    x = nerve.randn(4, 2, 5)  # (L, N, E)
    np.testing.assert_allclose(odd(x).numpy() - x.numpy(), np.broadcast_to(odd.pe.numpy()[:4, None], (4, 2, 5)),
                               atol=1e-6)
    assert list(odd.state_dict()) == []
    with pytest.raises(ValueError, match="sequence length 11 exceeds max_len=10"):
        odd(nerve.randn(11, 2, 5))


def test_learned_encoding_gets_gradients():
    pe = nn.LearnedPositionalEncoding(8, 4, batch_first=True).double()
    x = T(RNG.standard_normal((3, 5, 4)), True)
    assert nerve.gradcheck(lambda a, w: pe(a), [x, pe.weight])
    pe(x).sum().backward()
    np.testing.assert_allclose(pe.weight.grad.numpy()[:5], 3.0)
    assert np.all(pe.weight.grad.numpy()[5:] == 0)


def test_encoder_learns_a_task_bag_of_words_cannot():
    """Label: is the first token equal to the last one? Order matters, counts alone cannot tell."""
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (256, 6))
    x[:128, -1] = x[:128, 0]
    y = (x[:, 0] == x[:, -1]).astype(np.int64)
    emb = nn.Embedding(4, 16)
    pos = nn.LearnedPositionalEncoding(6, 16, batch_first=True)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True,
                                                           norm_first=True), 1)
    head = nn.Linear(16, 2)
    modules = nn.ModuleList([emb, pos, enc, head])
    opt = nerve.optim.Adam(modules.parameters(), lr=1e-2)
    for _ in range(60):
        logits = head(enc(pos(emb(x))).mean(1))
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = (logits.numpy().argmax(1) == y).mean()
    assert accuracy > 0.9, accuracy


def test_attention_maps_of_an_encoder():
    from nerve.explain import attention_maps
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2)
    enc.eval()
    x = nerve.randn(3, 5, 8)
    maps = attention_maps(enc, x, layer=0, head=1)
    assert maps.shape == (3, 5, 5)
    layer = enc.layers[0]
    with nerve.no_grad():
        _, want = layer.self_attn(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(maps, want.numpy()[:, 1], rtol=1e-6)
