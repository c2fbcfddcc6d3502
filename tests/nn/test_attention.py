"""MultiheadAttention: PyTorch's parameters, against a NumPy reference computed step by step, masks, causality,
gradcheck in float64, dropout, saved attention, errors. The attention ops themselves are tested in
tests/ops/test_attention.py."""

import numpy as np
import pytest

import nerve
from nerve import nn
from tests.helpers import ref_mha

RNG = np.random.default_rng(7)


def T(a, grad=True):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def causal(L, S):
    return np.where(np.tril(np.ones((L, S), bool)), 0.0, -np.inf)


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
