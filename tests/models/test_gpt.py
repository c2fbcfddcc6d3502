"""nerve.models.GPT: shapes, names, weight tying, causality, sampling, the optimiser and schedule helpers, and a
tiny overfit run."""
import math

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.models import GPT
from nerve.models.gpt import decay_groups, warmup_cosine, warmup_cosine_scheduler
from tests.helpers import n_params


def tiny(**kwargs) -> GPT:
    config = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
    config.update(kwargs)
    return GPT(**config)


def test_shapes_and_nanogpt_names():
    model = tiny()
    idx = np.random.default_rng(0).integers(0, 11, (3, 5))
    assert model(idx).shape == (3, 5, 11)
    assert model(idx[0]).shape == (5, 11)
    names = [n for n, _ in model.named_parameters()]
    assert names[:3] == ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight"]
    assert {"transformer.h.1.attn.c_attn.weight", "transformer.h.1.mlp.c_proj.bias",
            "transformer.ln_f.bias"} <= set(names)
    assert model.get_config()["n_layer"] == 2
    with pytest.raises(ValueError, match="sequence of length 9 is longer than block_size=8"):
        model(np.zeros((1, 9), np.int64))
    with pytest.raises(ValueError, match="n_head"):
        GPT(11, n_head=0)


def test_weight_tying_and_initialisation():
    nerve.manual_seed(0)
    model = GPT(50, block_size=16, n_layer=4, n_head=4, n_embd=64, bias=False)
    assert model.lm_head.weight is model.transformer.wte.weight
    untied = GPT(50, block_size=16, n_layer=4, n_head=4, n_embd=64, bias=False, tie_weights=False)
    assert n_params(untied) - n_params(model) == 50 * 64
    assert not any(n.endswith("bias") for n, _ in model.named_parameters())
    assert abs(model.transformer.h[0].attn.c_attn.weight.numpy().std() - 0.02) < 0.002
    assert abs(model.transformer.h[0].mlp.c_proj.weight.numpy().std() - 0.02 / math.sqrt(8)) < 0.001
    # the tied matrix gets the gradient of both uses
    idx = np.arange(10)[None] % 50
    model.loss(model(idx), idx).backward()
    assert model.transformer.wte.weight.grad.numpy()[20:].any()  # rows never looked up: head gradient only
    state = model.state_dict()
    assert "lm_head.weight" in state and "transformer.wte.weight" in state
    clone = GPT(50, block_size=16, n_layer=4, n_head=4, n_embd=64, bias=False)
    clone.load_state_dict(state)
    np.testing.assert_array_equal(clone(idx).numpy(), model(idx).numpy())


def test_future_tokens_never_change_earlier_logits():
    model = tiny()
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 11, (2, 8))
    base = model(idx).numpy()
    for j in range(8):
        changed = idx.copy()
        changed[:, j] = (changed[:, j] + 1 + rng.integers(0, 10, 2)) % 11
        out = model(changed).numpy()
        np.testing.assert_array_equal(out[:, :j], base[:, :j])
        assert not np.allclose(out[:, j], base[:, j])


def test_gradcheck_tiny_model():
    model = tiny(vocab_size=5, block_size=4, n_layer=1, n_embd=4).double()
    idx = np.array([[1, 3, 0, 2]])
    params = list(model.parameters())
    assert nerve.gradcheck(lambda *p: model.loss(model(idx), np.array([[3, 0, 2, 4]])), params)


def test_generate_is_deterministic_with_a_seed():
    model = tiny()
    prompt = np.array([[1, 2, 3]])
    a = model.generate(prompt, 12, generator=np.random.default_rng(5)).numpy()
    b = model.generate(prompt, 12, generator=np.random.default_rng(5)).numpy()
    c = model.generate(prompt, 12, generator=np.random.default_rng(6)).numpy()
    assert a.shape == (1, 15) and np.array_equal(a[:, :3], prompt)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    nerve.manual_seed(3)
    d = model.generate(prompt[0], 12).numpy()
    nerve.manual_seed(3)
    np.testing.assert_array_equal(d, model.generate(prompt[0], 12).numpy())
    assert d.shape == (15,) and model.training  # mode restored


def test_generate_greedy_top_k_top_p():
    model = tiny()
    prompt = np.array([[4, 2], [7, 7]])
    greedy = model.generate(prompt, 10, temperature=0).numpy()  # runs past block_size: the context is cropped
    assert greedy.shape == (2, 12)
    np.testing.assert_array_equal(model.generate(prompt, 10, top_k=1).numpy(), greedy)
    np.testing.assert_array_equal(model.generate(prompt, 10, top_p=1e-6).numpy(), greedy)
    # every sampled token lies among the top 3 of its step
    out = model.generate(prompt, 6, top_k=3, generator=np.random.default_rng(0)).numpy()
    for t in range(2, 8):
        top3 = np.argsort(model(out[:, :t]).numpy()[:, -1], axis=1)[:, -3:]
        assert all(out[b, t] in top3[b] for b in range(2))
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, 1, top_p=0)


def test_tiny_overfit():
    nerve.manual_seed(0)
    text = "hello world, hello nerve! "
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text * 3])
    model = GPT(len(chars), block_size=16, n_layer=2, n_head=2, n_embd=32)
    opt = model.configure_optimizers(0.0, 1e-2)
    x = np.stack([ids[i:i + 16] for i in range(0, 48, 4)])
    y = np.stack([ids[i + 1:i + 17] for i in range(0, 48, 4)])
    losses = []
    for _ in range(50):
        loss = model.loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 2.3 and losses[-1] < 0.3, losses[::10]  # from log(13) = 2.56 to near the text's entropy


def test_decay_groups():
    model = tiny(bias=True)
    decay, no_decay = decay_groups(model, 0.1)
    wte = model.transformer.wte.weight
    assert all(p.ndim == 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert all(p is not wte and p is not model.transformer.wpe.weight for p in decay["params"])
    assert any(p is wte for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    decay2, no_decay2 = decay_groups(model, 0.1, decay_embeddings=True)
    assert any(p is wte for p in decay2["params"]) and all(p.ndim == 1 for p in no_decay2["params"])
    n = len(list(model.parameters()))
    assert len(decay["params"]) + len(no_decay["params"]) == n
    opt = model.configure_optimizers(0.1, 1e-3, betas=(0.9, 0.99))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_warmup_cosine():
    lr = lambda s: warmup_cosine(s, 1e-3, 100, 2000, 1e-4)  # noqa: E731
    assert math.isclose(lr(0), 1e-3 / 101) and math.isclose(lr(99), 1e-3 * 100 / 101)
    assert math.isclose(lr(100), 1e-3) and math.isclose(lr(2000), 1e-4) and lr(5000) == 1e-4
    assert math.isclose(lr(1050), 5.5e-4)
    assert all(lr(s) >= lr(s + 1) for s in range(100, 2100))
    opt = nerve.optim.AdamW([nn.Parameter(np.zeros(3, np.float32))], lr=1e-3)
    sched = warmup_cosine_scheduler(opt, 100, 2000, 1e-4)
    seen = []
    for _ in range(1200):
        seen.append(opt.param_groups[0]["lr"])
        sched.step()
    np.testing.assert_allclose(seen, [lr(s) for s in range(1200)], rtol=1e-12)


def test_attention_maps_of_a_layer_and_head():
    import matplotlib
    matplotlib.use("Agg")
    from nerve.explain import attention_layers, attention_maps, plot_attention
    model = tiny()
    idx = np.array([[1, 5, 2, 7, 3]])
    assert [n for n, _ in attention_layers(model)] == ["transformer.h.0.attn", "transformer.h.1.attn"]
    maps = attention_maps(model, idx, layer=1)
    assert maps.shape == (1, 2, 5, 5) and model.training
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(maps, 1) == 0)
    # the same weights computed by hand from layer 1's input
    block = model.transformer.h[1]
    with nerve.no_grad():
        x = model.transformer.wte(idx) + model.transformer.wpe.weight[:5]
        x = model.transformer.h[0](x)
        qkv = block.attn.c_attn(block.ln_1(x)).numpy().reshape(1, 5, 3, 2, 4)
    q, k = qkv[:, :, 0].transpose(0, 2, 1, 3), qkv[:, :, 1].transpose(0, 2, 1, 3)
    scores = q @ k.transpose(0, 1, 3, 2) / 2.0 + np.triu(np.full((5, 5), -np.inf), 1)
    want = np.exp(scores - scores.max(-1, keepdims=True))
    np.testing.assert_allclose(maps, want / want.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(attention_maps(model, idx, layer="transformer.h.1.attn", head=1), maps[:, 1])
    assert block.attn.saved_attention is None and not block.attn.save_attention
    ax = plot_attention(maps[0, 1], list("abcde"), list("abcde"), title="layer 1, head 1")
    assert ax.get_title() == "layer 1, head 1"
    with pytest.raises(IndexError, match="layer 2 is out of range for 2 attention layers"):
        attention_maps(model, idx, layer=2)
    with pytest.raises(ValueError, match="no attention layers"):
        attention_maps(nn.Linear(2, 2), np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected one \(L, S\) map"):
        plot_attention(maps)
