"""F.multi_head_attention_forward against a NumPy loop over heads and against nn.MultiheadAttention with the same
weights; masks, bias_k/bias_v, add_zero_attn, unbatched input, gradients."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn

RNG = np.random.default_rng(0)
E, H, L, S, N = 8, 2, 3, 4, 2


def softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def reference(q, k, v, w, b, wo, bo, mask=None):
    """Per batch element and head: softmax(q_h k_h^T / sqrt(d) + mask) v_h, heads concatenated, projected."""
    hd = E // H
    out = np.zeros((q.shape[0], q.shape[1], E))
    weights = np.zeros((q.shape[1], H, q.shape[0], k.shape[0]))
    for n in range(q.shape[1]):
        qp, kp, vp = (x[:, n] @ w[i * E:(i + 1) * E].T + b[i * E:(i + 1) * E] for i, x in enumerate((q, k, v)))
        heads = []
        for h in range(H):
            sl = slice(h * hd, (h + 1) * hd)
            scores = qp[:, sl] @ kp[:, sl].T / np.sqrt(hd) + (0 if mask is None else mask)
            weights[n, h] = softmax(scores)
            heads.append(weights[n, h] @ vp[:, sl])
        out[:, n] = np.concatenate(heads, 1) @ wo.T + bo
    return out, weights


def args(q, k, v, w, b, wo, bo):
    return (q, k, v, E, H, w, b, None, None, False, 0.0, wo, bo)


def test_matches_loop_and_module():
    q, k, v = RNG.standard_normal((L, N, E)), RNG.standard_normal((S, N, E)), RNG.standard_normal((S, N, E))
    w, b, wo, bo = RNG.standard_normal((3 * E, E)), RNG.standard_normal(3 * E), RNG.standard_normal((E, E)), \
        RNG.standard_normal(E)
    mask = np.where(RNG.random((L, S)) < 0.3, -np.inf, 0.0)
    mask[:, 0] = 0.0
    t = nerve.tensor
    out, weights = F.multi_head_attention_forward(*args(t(q), t(k), t(v), t(w), t(b), t(wo), t(bo)), training=False,
                                                  attn_mask=t(mask == -np.inf), average_attn_weights=False)
    ref_out, ref_w = reference(q, k, v, w, b, wo, bo, mask)
    np.testing.assert_allclose(out.numpy(), ref_out, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), ref_w, atol=1e-12)
    mha = nn.MultiheadAttention(E, H, dtype=nerve.float64)
    mha.load_state_dict({"in_proj_weight": t(w), "in_proj_bias": t(b), "out_proj.weight": t(wo),
                         "out_proj.bias": t(bo)})
    mod_out, mod_w = mha(t(q), t(k), t(v), attn_mask=t(mask))
    np.testing.assert_allclose(out.numpy(), mod_out.numpy(), atol=1e-12)
    np.testing.assert_allclose(weights.numpy().mean(1), mod_w.numpy(), atol=1e-12)
    un, un_w = F.multi_head_attention_forward(*args(t(q[:, 0]), t(k[:, 0]), t(v[:, 0]), t(w), t(b), t(wo), t(bo)),
                                              training=False, attn_mask=t(mask))
    np.testing.assert_allclose(un.numpy(), ref_out[:, 0], atol=1e-12)
    assert un_w.shape == (L, S)


def test_padding_extra_keys_and_gradients():
    q, k = RNG.standard_normal((L, N, E)), RNG.standard_normal((S, N, E))
    w, wo = RNG.standard_normal((3 * E, E)), RNG.standard_normal((E, E))
    t = nerve.tensor
    padding = np.zeros((N, S), dtype=bool)
    padding[1, 2:] = True
    bias_k, bias_v = RNG.standard_normal((1, 1, E)), RNG.standard_normal((1, 1, E))
    out, weights = F.multi_head_attention_forward(t(q), t(k), t(k), E, H, t(w), None, t(bias_k), t(bias_v), True, 0.0,
                                                  t(wo), None, training=False, key_padding_mask=t(padding))
    assert weights.shape == (N, L, S + 2)  # one bias key, one zero key
    np.testing.assert_allclose(weights.numpy()[1, :, 2:4], 0.0)  # padded keys get no weight
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0)
    qt, wt = t(q, requires_grad=True), t(w, requires_grad=True)
    assert nerve.gradcheck(lambda a, b_: F.multi_head_attention_forward(
        a, t(k), t(k), E, H, b_, None, None, None, False, 0.0, t(wo), None, training=False)[0], [qt, wt])
    with pytest.raises(RuntimeError, match="is_causal is a hint and needs attn_mask"):
        F.multi_head_attention_forward(t(q), t(k), t(k), E, H, t(w), None, None, None, False, 0.0, t(wo), None,
                                       is_causal=True)
    with pytest.raises(nerve.autograd.ShapeError, match="needs embed_dim 6"):
        F.multi_head_attention_forward(t(q), t(k), t(k), 6, H, t(w), None, None, None, False, 0.0, t(wo), None)
