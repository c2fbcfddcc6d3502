"""Scaled dot-product attention (fused, packed), the fused feed-forward GELU and MultiheadAttention: NumPy
references computed step by step, gradcheck in float64, both backward paths, masks, causality, errors."""
import math

import numpy as np
import pytest
from scipy.special import erf

import nerve
import nerve.functional as F
from nerve import nn

RNG = np.random.default_rng(7)


def T(a, grad=True):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def ref_attention(q, k, v, bias=None, scale=None):
    """softmax(q k^T scale + bias) v, one batch element, one query row at a time; masked rows give 0."""
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    bias = np.zeros((L, S)) if bias is None else bias
    bias = np.broadcast_to(bias, batch + (L, S))
    q, k, v = (np.broadcast_to(a, batch + a.shape[-2:]) for a in (q, k, v))
    out = np.zeros(batch + (L, v.shape[-1]))
    weights = np.zeros(batch + (L, S))
    for b in np.ndindex(*batch):
        for i in range(L):
            scores = np.array([q[b][i] @ k[b][j] * scale + bias[b][i, j] for j in range(S)])
            if np.all(np.isneginf(scores)):
                continue
            e = np.exp(scores - scores.max())
            w = e / e.sum()
            weights[b][i] = w
            out[b][i] = sum(w[j] * v[b][j] for j in range(S))
    return out, weights


def causal(L, S):
    return np.where(np.tril(np.ones((L, S), bool)), 0.0, -np.inf)


# --- scaled_dot_product_attention ---------------------------------------------------------------------
BOOL_MASK = RNG.random((4, 6)) > 0.4
BOOL_MASK[2] = False  # a query that may attend to nothing
PAD = np.ones((2, 1, 1, 6), bool)
PAD[1, ..., 4:] = False
ADDITIVE = RNG.standard_normal((2, 1, 4, 6))

MASKS = {
    "none": ({}, None),
    "causal": ({"is_causal": True}, causal(4, 6)),
    "bool": ({"attn_mask": BOOL_MASK}, np.where(BOOL_MASK, 0.0, -np.inf)),
    "padding": ({"attn_mask": PAD}, np.where(PAD, 0.0, -np.inf)),
    "additive": ({"attn_mask": ADDITIVE}, ADDITIVE),
}


def _qkv(q_batch=(2, 3), k_batch=(2, 3)):
    return (RNG.standard_normal(q_batch + (4, 5)), RNG.standard_normal(k_batch + (6, 5)),
            RNG.standard_normal(k_batch + (6, 3)))


@pytest.mark.parametrize("name", sorted(MASKS))
def test_sdpa_matches_stepwise_reference(name):
    kwargs, bias = MASKS[name]
    q, k, v = _qkv()
    got = F.scaled_dot_product_attention(T(q), T(k), T(v), **kwargs).numpy()
    want, _ = ref_attention(q, k, v, bias)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_sdpa_scale_and_broadcast_batch():
    q, k, v = _qkv((2, 3), (1, 3))  # keys and values shared across the first batch axis
    got = F.scaled_dot_product_attention(T(q), T(k), T(v), scale=0.3).numpy()
    np.testing.assert_allclose(got, ref_attention(q, k, v, scale=0.3)[0], rtol=1e-12, atol=1e-12)
    assert nerve.gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, scale=0.3), [T(q), T(k), T(v)])


@pytest.mark.parametrize("name", sorted(MASKS))
def test_sdpa_gradcheck(name):
    kwargs, _ = MASKS[name]
    q, k, v = _qkv((2,), (2,))
    if name in ("padding", "additive"):
        q, k, v = _qkv((2, 1), (2, 1))
    fn = lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kwargs)  # noqa: E731
    assert nerve.gradcheck(fn, [T(q), T(k), T(v)])


@pytest.mark.parametrize("name", ["causal", "bool"])
def test_sdpa_second_order(name):
    kwargs, _ = MASKS[name]
    q, k, v = _qkv((1,), (1,))
    fn = lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kwargs)  # noqa: E731
    assert nerve.gradgradcheck(fn, [T(q), T(k), T(v)])


def _both_paths(fn, inputs):
    out = fn(*inputs)
    v = nerve.tensor(RNG.standard_normal(out.shape))
    fast = nerve.grad(out, inputs, v, retain_graph=True)
    graph = nerve.grad(out, inputs, v, create_graph=True)
    for a, b in zip(fast, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name", sorted(MASKS))
def test_sdpa_vjp_and_backward_agree(name):
    kwargs, _ = MASKS[name]
    q, k, v = _qkv()
    _both_paths(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kwargs), [T(q), T(k), T(v)])


def test_sdpa_dropout_both_paths_and_rate():
    q, k, v = _qkv()
    _both_paths(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, dropout_p=0.5), [T(q), T(k), T(v)])
    # with v = identity rows the output is the (dropped, rescaled) attention matrix itself
    eye = np.broadcast_to(np.eye(6), (20, 6, 6))
    out = F.scaled_dot_product_attention(T(RNG.standard_normal((20, 6, 5))), T(RNG.standard_normal((20, 6, 5))),
                                         T(eye), dropout_p=0.25).numpy()
    assert abs((out == 0).mean() - 0.25) < 0.05
    assert abs(out.sum(-1).mean() - 1.0) < 0.1


def test_fully_masked_row_gives_zero_output_and_gradient():
    q, k, v = _qkv((1,), (1,))
    qt = T(q)
    out = F.scaled_dot_product_attention(qt, T(k), T(v), attn_mask=BOOL_MASK)
    assert np.all(out.numpy()[:, 2] == 0) and np.isfinite(out.numpy()).all()
    out.sum().backward()
    assert np.all(qt.grad.numpy()[:, 2] == 0)


def test_causal_future_keys_never_change_earlier_outputs():
    q, k, v = _qkv((2,), (2,))
    k, v = k[:, :4], v[:, :4]
    base = F.scaled_dot_product_attention(T(q), T(k), T(v), is_causal=True).numpy()
    for j in range(4):
        k2, v2 = k.copy(), v.copy()
        k2[:, j] += 10 * RNG.standard_normal(k2[:, j].shape)
        v2[:, j] -= 10
        out = F.scaled_dot_product_attention(T(q), T(k2), T(v2), is_causal=True).numpy()
        np.testing.assert_array_equal(out[:, :j], base[:, :j])
        assert not np.allclose(out[:, j:], base[:, j:])


def test_attention_weights_match_reference():
    q, k, _ = _qkv()
    for kwargs, bias in MASKS.values():
        mask = kwargs.get("attn_mask")
        w = F.attention_weights(T(q), T(k), attn_mask=mask, is_causal=kwargs.get("is_causal", False)).numpy()
        np.testing.assert_allclose(w, ref_attention(q, k, k, bias)[1], atol=1e-12)


def test_sdpa_float32_and_errors():
    q, k, v = (nerve.tensor(a.astype(np.float32)) for a in _qkv())
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.dtype == np.float32 and out.shape == (2, 3, 4, 3)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: expected query \(\.\.\., L, E\)"):
        F.scaled_dot_product_attention(q, q[..., :3], v)
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=BOOL_MASK, is_causal=True)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 6\) does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((5, 6), bool))
    with pytest.raises(TypeError, match="boolean or floating"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 6), np.int64))
    with pytest.raises(ValueError, match="batch dimensions"):
        F.scaled_dot_product_attention(q, k[:1, :2], v[:1, :2])
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)


# --- packed self-attention ------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_first", [True, False])
def test_packed_self_attention_equals_split_heads(batch_first):
    B, L, H, D = 2, 5, 3, 2
    qkv = RNG.standard_normal((B, L, 3 * H * D))
    got = nerve.packed_self_attention(T(qkv if batch_first else qkv.transpose(1, 0, 2)), H, is_causal=True,
                                      batch_first=batch_first).numpy()
    heads = qkv.reshape(B, L, 3, H, D).transpose(2, 0, 3, 1, 4)
    want = ref_attention(heads[0], heads[1], heads[2], causal(L, L))[0].transpose(0, 2, 1, 3).reshape(B, L, H * D)
    np.testing.assert_allclose(got if batch_first else got.transpose(1, 0, 2), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_first", [True, False])
def test_packed_self_attention_gradients(batch_first):
    qkv = RNG.standard_normal((2, 3, 12))
    qkv = T(qkv if batch_first else qkv.transpose(1, 0, 2))
    pad = np.ones((2, 1, 1, 3), bool)
    pad[0, ..., 2] = False
    fn = lambda x: nerve.packed_self_attention(x, 2, attn_mask=pad, batch_first=batch_first)  # noqa: E731
    assert nerve.gradcheck(fn, [qkv])
    assert nerve.gradgradcheck(lambda x: nerve.packed_self_attention(x, 2, is_causal=True, batch_first=batch_first),
                               [T(qkv.numpy()[:1, :2])])
    _both_paths(fn, [qkv])
    _both_paths(lambda x: nerve.packed_self_attention(x, 2, dropout_p=0.3, batch_first=batch_first), [qkv])


def test_packed_self_attention_errors():
    with pytest.raises(ValueError, match=r"packed_self_attention: expected qkv .* got \(2, 3, 10\)"):
        nerve.packed_self_attention(T(np.zeros((2, 3, 10))), 2)


# --- linear_gelu -----------------------------------------------------------------------------------------
def ref_gelu(h):
    return h * 0.5 * (1 + erf(h / math.sqrt(2)))


def test_linear_gelu_matches_reference_in_both_dtypes():
    x, w, b = RNG.standard_normal((3, 4, 5)) * 2, RNG.standard_normal((6, 5)), RNG.standard_normal(6)
    want = ref_gelu(x @ w.T + b)
    np.testing.assert_allclose(F.linear_gelu(T(x), T(w), T(b)).numpy(), want, rtol=1e-13, atol=1e-13)
    got32 = F.linear_gelu(*(nerve.tensor(a.astype(np.float32)) for a in (x, w, b))).numpy()
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-5)
    # the float32 kernel's own error (erf by Abramowitz & Stegun 7.1.26), value and slope, on a fine grid
    from nerve.ops.attention import _gelu_and_slope
    h = np.linspace(-9, 9, 20001)
    y, slope = _gelu_and_slope(h.astype(np.float32))
    want_slope = 0.5 * (1 + erf(h / math.sqrt(2))) + h * np.exp(-h * h / 2) / math.sqrt(2 * math.pi)
    assert np.abs(y - ref_gelu(h)).max() < 2e-6 and np.abs(slope - want_slope).max() < 1e-6


def test_linear_gelu_gradients():
    x, w, b = T(RNG.standard_normal((2, 3, 4))), T(RNG.standard_normal((5, 4))), T(RNG.standard_normal(5))
    assert nerve.gradcheck(F.linear_gelu, [x, w, b])
    assert nerve.gradgradcheck(F.linear_gelu, [x, w, b])
    _both_paths(F.linear_gelu, [x, w, b])
    _both_paths(lambda a, c: F.linear_gelu(a, c), [x, w])
    with pytest.raises(ValueError, match=r"linear_gelu: input \(2, 3, 4\) does not match weight \(5, 3\)"):
        F.linear_gelu(x, T(np.zeros((5, 3))))


# --- MultiheadAttention ----------------------------------------------------------------------------------
def ref_mha(m, query, key, value, bias=None):
    """PyTorch's MultiheadAttention spelled out in NumPy, batch-first (N, L, E) arrays; returns (out, weights)."""
    E, H = m.embed_dim, m.num_heads
    D = E // H
    if m.in_proj_weight is not None:
        wq, wk, wv = np.split(m.in_proj_weight.numpy(), 3)
    else:
        wq, wk, wv = m.q_proj_weight.numpy(), m.k_proj_weight.numpy(), m.v_proj_weight.numpy()
    bq, bk, bv = np.split(m.in_proj_bias.numpy(), 3) if m.in_proj_bias is not None else (0, 0, 0)
    q, k, v = query @ wq.T + bq, key @ wk.T + bk, value @ wv.T + bv
    N, L, S = query.shape[0], query.shape[1], key.shape[1]
    out = np.zeros((N, L, E))
    weights = np.zeros((N, H, L, S))
    for n in range(N):
        for h in range(H):
            cols = slice(h * D, (h + 1) * D)
            b = 0.0 if bias is None else np.broadcast_to(bias, (N, H, L, S))[n, h]
            o, w = ref_attention(q[n, :, cols], k[n, :, cols], v[n, :, cols], b)
            out[n, :, cols] = o
            weights[n, h] = w
    proj = m.out_proj
    out = out @ proj.weight.numpy().T + (proj.bias.numpy() if proj.bias is not None else 0)
    return out, weights


def _mha(**kwargs):
    m = nn.MultiheadAttention(**kwargs).double()
    if m.in_proj_bias is not None:  # PyTorch starts biases at 0: make them count in the comparison
        nn.init.normal_(m.in_proj_bias)
        nn.init.normal_(m.out_proj.bias)
    return m


def test_mha_parameters_follow_pytorch():
    m = nn.MultiheadAttention(8, 2)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [
        ("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]
    assert np.all(m.in_proj_bias.numpy() == 0) and np.all(m.out_proj.bias.numpy() == 0)
    m2 = nn.MultiheadAttention(8, 2, bias=False, kdim=3, vdim=5)
    assert [(n, tuple(p.shape)) for n, p in m2.named_parameters()] == [
        ("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 3)), ("v_proj_weight", (8, 5)), ("out_proj.weight", (8, 8))]
    clone = nn.MultiheadAttention(8, 2)
    clone.load_state_dict(m.state_dict())
    x = nerve.randn(2, 3, 8)
    np.testing.assert_array_equal(clone(x, x, x)[0].numpy(), m(x, x, x)[0].numpy())
    with pytest.raises(ValueError, match=r"embed_dim \(8\) must be a positive multiple of num_heads \(3\)"):
        nn.MultiheadAttention(8, 3)


KPM = np.zeros((2, 5), bool)
KPM[1, 3:] = True
ATTN = np.triu(np.ones((4, 5), bool), 2)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("kind", ["self", "cross", "kvdim"])
def test_mha_matches_reference(batch_first, kind):
    kd = 3 if kind == "kvdim" else None
    m = _mha(embed_dim=6, num_heads=2, batch_first=batch_first, kdim=kd, vdim=kd)
    L = 5 if kind == "self" else 4
    x = RNG.standard_normal((2, L, 6))
    mem = x if kind == "self" else RNG.standard_normal((2, 5, kd or 6))
    attn = ATTN[:, :5] if kind != "self" else np.triu(np.ones((5, 5), bool), 1)
    bias = np.where(attn, -np.inf, 0.0) + np.where(KPM, -np.inf, 0.0)[:, None, None, :]
    want, want_w = ref_mha(m, x, mem, mem, bias)

    def run(need_weights, average=True):
        xt = T(x if batch_first else x.transpose(1, 0, 2))
        mt = xt if kind == "self" else T(mem if batch_first else mem.transpose(1, 0, 2))
        out, w = m(xt, mt, mt, key_padding_mask=KPM, attn_mask=attn, need_weights=need_weights,
                   average_attn_weights=average)
        out = out.numpy() if batch_first else out.numpy().transpose(1, 0, 2)
        return out, w

    for need in (True, False):
        out, w = run(need)
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
        assert (w is None) != need
    np.testing.assert_allclose(run(True)[1].numpy(), want_w.mean(1), atol=1e-12)
    np.testing.assert_allclose(run(True, False)[1].numpy(), want_w, atol=1e-12)


def test_mha_float_masks_unbatched_and_is_causal():
    m = _mha(embed_dim=4, num_heads=2)
    x = RNG.standard_normal((5, 4))
    add = RNG.standard_normal((2, 5, 5))  # (num_heads, L, S) for an unbatched input
    out, w = m(T(x), T(x), T(x), attn_mask=add, key_padding_mask=np.array([0.0, 0, -np.inf, 0, 0]))
    want, want_w = ref_mha(m, x[None], x[None], x[None], add[None] + np.array([0.0, 0, -np.inf, 0, 0]))
    np.testing.assert_allclose(out.numpy(), want[0], atol=1e-12)
    np.testing.assert_allclose(w.numpy(), want_w[0].mean(0), atol=1e-12)
    causal_out = m(T(x), T(x), T(x), is_causal=True, need_weights=False)[0].numpy()
    np.testing.assert_allclose(causal_out, ref_mha(m, x[None], x[None], x[None], causal(5, 5))[0][0], atol=1e-12)


def test_mha_gradcheck_inputs_and_parameters():
    m = _mha(embed_dim=4, num_heads=2, batch_first=True)
    x, mem = T(RNG.standard_normal((2, 3, 4))), T(RNG.standard_normal((2, 2, 4)))
    params = list(m.parameters())
    for need in (True, False):
        self_fn = lambda a, *p: m(a, a, a, key_padding_mask=KPM[:, :3], need_weights=need, is_causal=True)[0]  # noqa
        assert nerve.gradcheck(self_fn, [x] + params)
        cross_fn = lambda a, b, *p: m(a, b, b, need_weights=need)[0]  # noqa: E731
        assert nerve.gradcheck(cross_fn, [x, mem] + params)
    assert nerve.gradgradcheck(lambda a: m(a, a, a, need_weights=False)[0], [T(x.numpy()[:1, :2])])


def test_mha_dropout_only_while_training():
    m = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    x = nerve.randn(2, 6, 8)
    a, b = m(x, x, x, need_weights=False)[0], m(x, x, x, need_weights=False)[0]
    assert not np.allclose(a.numpy(), b.numpy())
    m.eval()
    a, b = m(x, x, x)[0], m(x, x, x, need_weights=False)[0]
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_mha_save_attention():
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    x = nerve.randn(3, 5, 8)
    m.save_attention = True
    _, w = m(x, x, x, need_weights=False, is_causal=True)
    assert w is None and m.saved_attention.shape == (3, 2, 5, 5) and not m.saved_attention.requires_grad
    np.testing.assert_allclose(m.saved_attention.numpy().sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(m.saved_attention.numpy()[0, 0], 1) == 0)


def test_mha_bad_inputs():
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    x = nerve.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"MultiheadAttention\(8, heads=2\): expected query/key/value features"):
        m(x, nerve.randn(2, 5, 4), x)
    with pytest.raises(ValueError, match="all be batched"):
        m(x, x[0], x[0])
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 5\)"):
        m(x, x, x, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(5, 5\) or \(4, 5, 5\)"):
        m(x, x, x, attn_mask=np.zeros((3, 5, 5), bool))
    with pytest.raises(ValueError, match="different batch sizes"):
        m(x, nerve.randn(3, 5, 8), nerve.randn(3, 5, 8))


def test_softmax_shift_fallbacks_stay_exact(monkeypatch):
    """The kernel shifts rows by a cheap common value; rows that value would underflow or overflow are redone."""
    from nerve.ops import attention
    calls = []
    exact = attention._softmax_rows_
    monkeypatch.setattr(attention, "_softmax_rows_", lambda s: calls.append(1) or exact(s))
    q, k, v = _qkv((1, 2), (1, 2))
    q[0, 0, 1] *= 400.0  # this row's scores dwarf the others': shifting by the matrix maximum underflows them
    for dtype in (np.float64, np.float32):
        got = F.scaled_dot_product_attention(*(nerve.tensor(a.astype(dtype)) for a in (q, k, v))).numpy()
        np.testing.assert_allclose(got, ref_attention(q, k, v)[0], rtol=2e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-6 if dtype == np.float32 else 1e-12)
    assert len(calls) == 2
    q, k, v = _qkv((1,), (1,))
    k, v = k[:, :4], v[:, :4]
    k[0, 0] = 230 * q[0, 3] / np.linalg.norm(q[0, 3]) ** 2  # key 0 scores ~100 above query 3's own key
    got = F.scaled_dot_product_attention(*(nerve.tensor(a.astype(np.float32)) for a in (q, k, v)),
                                         is_causal=True).numpy()
    assert len(calls) == 3  # exp(100) overflows float32
    np.testing.assert_allclose(got, ref_attention(q, k, v, causal(4, 4))[0], rtol=2e-5, atol=1e-6)
    assert np.allclose(got[0, 3], v[0, 0], atol=1e-6)


def test_empty_keys_give_zeros():
    out = F.scaled_dot_product_attention(T(np.ones((2, 3, 4))), T(np.ones((2, 0, 4))), T(np.ones((2, 0, 5))))
    assert out.shape == (2, 3, 5) and not out.numpy().any()
