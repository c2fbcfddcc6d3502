"""scaled_dot_product_attention and packed_self_attention (fused kernels) and attention_weights through the op table:
forward against a NumPy loop over queries, gradcheck, gradgradcheck (the kernels' second order through their
references), kernel against reference, rules read only their namespace; masks of every kind, fully masked rows,
dropout fixed by a seed; then the reference's forward against the kernel's, causality, the softmax's fallbacks,
errors."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve.ops import attention
from nerve.ops.attention import PackedSelfAttention, ScaledDotProductAttention
from tests.helpers import ref_attention
from tests.ops.table import Case, make_inputs, table_tests

RNG = np.random.default_rng(7)
L, S, E, EV = 4, 6, 5, 3


def causal(rows, cols):
    return np.where(np.tril(np.ones((rows, cols), bool)), 0.0, -np.inf)


BOOL_MASK = RNG.random((L, S)) > 0.4
BOOL_MASK[2] = False  # a query that may attend to nothing
PAD = np.ones((2, 1, 1, S), bool)
PAD[1, ..., 4:] = False
ADDITIVE = RNG.standard_normal((2, 1, L, S))

# name: (keyword arguments, the additive bias they mean, batch shape of q, k and v)
MASKS = {
    "none": ({}, None, (2,)),
    "causal": ({"is_causal": True}, causal(L, S), (2,)),
    "bool": ({"attn_mask": BOOL_MASK}, np.where(BOOL_MASK, 0.0, -np.inf), (2,)),
    "padding": ({"attn_mask": PAD}, np.where(PAD, 0.0, -np.inf), (2, 1)),
    "additive": ({"attn_mask": ADDITIVE}, ADDITIVE, (2, 1)),
}
SECOND = {"causal", "bool", "additive"}


def _dropped(seed: int, p: float, shape: tuple):
    """The kernels' dropout multiplier after ``nerve.manual_seed(seed)``: 0 with probability p, else 1 / (1 - p)."""
    return (np.random.default_rng(seed).random(shape, dtype=np.float32) >= p) / (1.0 - p)


def _sdpa_cases():
    for name, (kwargs, bias, batch) in MASKS.items():
        yield Case(f"sdpa[{name}]", lambda q, k, v, kw=kwargs: F.scaled_dot_product_attention(q, k, v, **kw),
                   lambda q, k, v, b=bias: ref_attention(q, k, v, b)[0],
                   [batch + (L, E), batch + (S, E), batch + (S, EV)], second=name in SECOND, rtol=1e-12, atol=1e-12)
        yield Case(f"attention_weights[{name}]",
                   lambda q, k, kw=kwargs: F.attention_weights(q, k, **kw),
                   lambda q, k, b=bias: ref_attention(q, k, k, b)[1], [batch + (L, E), batch + (S, E)],
                   second=name == "bool", rtol=1e-12, atol=1e-12)
    yield Case("sdpa[scale,broadcast batch]", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3),
               lambda q, k, v: ref_attention(q, k, v, scale=0.3)[0], [(2, 3, L, E), (1, 3, S, E), (1, 3, S, EV)],
               second=True, rtol=1e-12, atol=1e-12)
    # one tensor as query, key and value: each position's partial derivative counted once, at every order
    yield Case("sdpa[self,causal]", lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True),
               lambda x: ref_attention(x, x, x, causal(L, L))[0], [(2, L, E)], second=True, rtol=1e-12, atol=1e-12)

    # a float mask that requires grad receives dS, summed over the axes it was broadcast along
    for shape in [(L, S), (2, 1, L, S)]:
        yield Case(f"sdpa[learned mask {shape}]", lambda q, k, v, b: F.scaled_dot_product_attention(q, k, v, b),
                   lambda q, k, v, b: ref_attention(q, k, v, b)[0], [(2, 3, L, E), (2, 3, S, E), (2, 3, S, EV), shape],
                   second=True, rtol=1e-12, atol=1e-12)
    # grouped-query attention: 6 query heads share 3 key heads and 2 value heads... each group of heads repeated
    yield Case("sdpa[gqa]", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
               lambda q, k, v: ref_attention(q, np.repeat(k, 3, axis=-3), np.repeat(v, 2, axis=-3))[0],
               [(2, 6, L, E), (2, 2, S, E), (2, 3, S, EV)], second=True, rtol=1e-12, atol=1e-12)
    yield Case("sdpa[gqa,learned mask,causal scale]",
               lambda q, k, v, b: F.scaled_dot_product_attention(q, k, v, b, scale=0.4, enable_gqa=True),
               lambda q, k, v, b: ref_attention(q, np.repeat(k, 4, axis=-3), np.repeat(v, 4, axis=-3), b, 0.4)[0],
               [(4, L, E), (1, S, E), (1, S, EV), (4, 1, S)], second=True, rtol=1e-12, atol=1e-12)

    def dropout_fn(q, k, v):
        nerve.manual_seed(11)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, is_causal=True)

    def dropout_ref(q, k, v):
        return (ref_attention(q, k, k, causal(L, S))[1] * _dropped(11, 0.3, (2, L, S))) @ v
    yield Case("sdpa[dropout,causal]", dropout_fn, dropout_ref, [(2, L, E), (2, S, E), (2, S, EV)], second=True,
               rtol=1e-12, atol=1e-12)


# --- packed self-attention: qkv (B, T, 3 H D) ----------------------------------------------------------------------
B, T_, HEADS, D = 2, 3, 2, 2
PACKED_PAD = np.ones((B, 1, 1, T_), bool)
PACKED_PAD[0, ..., 2] = False


def _ref_packed(qkv, bias, batch_first, keep=None):
    qkv = qkv if batch_first else qkv.transpose(1, 0, 2)
    q, k, v = qkv.reshape(B, T_, 3, HEADS, D).transpose(2, 0, 3, 1, 4)
    weights = ref_attention(q, k, k, bias)[1]
    out = ((weights if keep is None else weights * keep) @ v).transpose(0, 2, 1, 3).reshape(B, T_, HEADS * D)
    return out if batch_first else out.transpose(1, 0, 2)


def _packed_cases():
    masks = {"causal": ({"is_causal": True}, causal(T_, T_)), "padding": ({"attn_mask": PACKED_PAD},
                                                                           np.where(PACKED_PAD, 0.0, -np.inf))}
    for batch_first in (True, False):
        shape = [(B, T_, 3 * HEADS * D) if batch_first else (T_, B, 3 * HEADS * D)]
        for name, (kwargs, bias) in masks.items():
            yield Case(f"packed[{name},batch_first={batch_first}]",
                       lambda x, kw=kwargs, bf=batch_first: nerve.packed_self_attention(x, HEADS, batch_first=bf, **kw),
                       lambda x, b=bias, bf=batch_first: _ref_packed(x, b, bf), shape, second=name == "causal",
                       rtol=1e-12, atol=1e-12)

        def dropout_fn(x, bf=batch_first):
            nerve.manual_seed(5)
            return nerve.packed_self_attention(x, HEADS, dropout_p=0.3, batch_first=bf)
        yield Case(f"packed[dropout,batch_first={batch_first}]", dropout_fn,
                   lambda x, bf=batch_first: _ref_packed(x, None, bf, _dropped(5, 0.3, (B, HEADS, T_, T_))), shape,
                   second=True, rtol=1e-12, atol=1e-12)


CASES = list(_sdpa_cases()) + list(_packed_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def _reference_apply(cls):
    """``cls.apply`` replaced by the kernel's forward (for what it keeps: masks, dead rows) and then its reference."""
    def apply(*inputs):
        node = cls.__new__(cls)
        node.forward(*[t.data if isinstance(t, nerve.Tensor) else t for t in inputs])
        return node.reference(*inputs)
    return staticmethod(apply)


@pytest.mark.parametrize("case", [c for c in CASES if not c.name.startswith("attention_weights")], ids=str)
def test_reference_forward_equals_kernel(case, monkeypatch):
    tensors = [nerve.tensor(a) for a in make_inputs(case)]
    kernel = case.fn(*tensors)
    for cls in (ScaledDotProductAttention, PackedSelfAttention):
        monkeypatch.setattr(cls, "apply", _reference_apply(cls))
    np.testing.assert_allclose(case.fn(*tensors).numpy(), kernel.numpy(), rtol=1e-13, atol=1e-14)


# --- semantics --------------------------------------------------------------------------------------------------------
def _qkv(q_batch=(2, 3), k_batch=(2, 3)):
    return (RNG.standard_normal(q_batch + (L, E)), RNG.standard_normal(k_batch + (S, E)),
            RNG.standard_normal(k_batch + (S, EV)))


def T(a, grad=True):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def test_dropout_rate():
    """With v = identity rows the output is the (dropped, rescaled) attention matrix itself."""
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


def test_softmax_shift_fallbacks_stay_exact(monkeypatch):
    """The kernel shifts rows by a cheap common value; rows that value would underflow or overflow are redone."""
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


def test_float32_and_errors():
    q, k, v = (nerve.tensor(a.astype(np.float32)) for a in _qkv())
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.dtype == np.float32 and out.shape == (2, 3, 4, 3)
    with pytest.raises(RuntimeError, match=r"scaled_dot_product_attention: expected query \(\.\.\., L, E\)"):
        F.scaled_dot_product_attention(q, q[..., :3], v)
    with pytest.raises(RuntimeError, match="explicit attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=BOOL_MASK, is_causal=True)
    with pytest.raises(RuntimeError, match=r"attn_mask of shape \(5, 6\) does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((5, 6), bool))
    with pytest.raises(TypeError, match="boolean or floating"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 6), np.int64))
    with pytest.raises(RuntimeError, match="batch dimensions.*need enable_gqa=True"):
        F.scaled_dot_product_attention(q, k[:1, :2], v[:1, :2])
    with pytest.raises(ValueError, match="batch dimensions"):  # ShapeError: nerve's earlier class still catches it
        F.scaled_dot_product_attention(q, k[:1, :2], v[:1, :2])
    with pytest.raises(RuntimeError, match=r"heads in key \(2\) and value \(2\) must divide the number of heads in "
                                           r"query \(3\)"):
        F.scaled_dot_product_attention(q, k[:, :2], v[:, :2], enable_gqa=True)
    with pytest.raises(RuntimeError, match=r"enable_gqa=True needs heads at dim -3"):
        F.scaled_dot_product_attention(q[0, 0], k[0, 0], v[0, 0], enable_gqa=True)
    with pytest.raises(TypeError, match="must have the query's dtype float32, got float64"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=nerve.zeros(4, 6, dtype=nerve.float64, requires_grad=True))
    with pytest.raises(RuntimeError, match="packed_self_attention: explicit attn_mask should not be set"):
        nerve.packed_self_attention(nerve.zeros(2, 3, 12), 2, attn_mask=np.ones((3, 3), bool), is_causal=True)
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    with pytest.raises(RuntimeError, match=r"packed_self_attention: expected qkv .* got \(2, 3, 10\)"):
        nerve.packed_self_attention(T(np.zeros((2, 3, 10))), 2)


def test_learned_mask_gradient_is_the_scores_gradient_and_dead_rows_give_none():
    """d loss / d mask = d loss / d scores (the mask is added to them): against the gradient through an explicit
    composition, also with a row of the mask all -inf (that query attends to nothing: zero output and gradient)."""
    q, k, v = (nerve.tensor(RNG.standard_normal(s)) for s in [(2, L, E), (2, S, E), (2, S, EV)])
    mask = RNG.standard_normal((L, S))
    mask[1] = -np.inf
    b = nerve.tensor(mask, requires_grad=True)
    out = F.scaled_dot_product_attention(q, k, v, b)
    g = nerve.tensor(RNG.standard_normal(out.shape))
    (gb,) = nerve.grad(out, b, g)
    scores = nerve.tensor((q.numpy() @ k.numpy().swapaxes(-1, -2)) / np.sqrt(E) + mask, requires_grad=True)
    live = np.ones((L, 1))
    live[1] = 0
    weights = F.softmax(scores.masked_fill(nerve.tensor(np.isneginf(mask).all(1, keepdims=True)), 0.0), -1) * live
    (gs,) = nerve.grad(weights @ v, scores, g)
    np.testing.assert_allclose(gb.numpy(), gs.numpy().sum(0), rtol=1e-12, atol=1e-12)
    assert not gb.numpy()[1].any() and not out.numpy()[:, 1].any()
    (gg,) = nerve.grad(F.scaled_dot_product_attention(q, k, v, b).sum(), b, create_graph=True)
    assert np.isfinite(gg.numpy()[0]).all()


def test_learned_relative_position_bias_is_trained():
    """A float mask as a learned parameter (a relative-position bias): fitting attention that looks one step back
    needs the bias to learn it (q and k are zero, so the scores carry no information)."""
    nerve.manual_seed(0)
    n = 6
    bias = nerve.zeros(n, n, dtype=nerve.float64, requires_grad=True)
    v = nerve.tensor(RNG.standard_normal((8, n, 3)))
    target = np.roll(v.numpy(), 1, axis=1)
    target[:, 0] = v.numpy()[:, 0]
    zeros = nerve.zeros(8, n, 4, dtype=nerve.float64)
    opt = nerve.optim.Adam([bias], lr=0.5)
    for _ in range(100):
        loss = F.mse_loss(F.scaled_dot_product_attention(zeros, zeros, v, bias), nerve.tensor(target))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3, loss.item()
