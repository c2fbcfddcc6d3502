"""nn.Transformer (wiring against its own stacks run by hand, PyTorch's state-dict names, the mask, a task it
learns) and the lazy layers (shapes inferred at the first call, then the plain layer)."""
import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.autograd import ShapeError

RNG = np.random.default_rng(0)


def small(**kw):
    nerve.manual_seed(0)
    return nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16,
                          dropout=0.0, dtype=nerve.float64, **kw)


def test_transformer_is_encoder_then_decoder_with_final_norms():
    model = small()
    src, tgt = nerve.tensor(RNG.standard_normal((5, 3, 8))), nerve.tensor(RNG.standard_normal((4, 3, 8)))
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=nerve.float64)
    memory = src
    for layer in model.encoder.layers:
        memory = layer(memory)
    memory = model.encoder.norm(memory)
    out = model.decoder.layers[0](tgt, memory, tgt_mask=mask)
    np.testing.assert_allclose(model(src, tgt, tgt_mask=mask).numpy(), model.decoder.norm(out).numpy(), atol=1e-12)
    keys = set(model.state_dict())
    assert {"encoder.layers.1.self_attn.in_proj_weight", "encoder.norm.weight", "decoder.norm.bias",
            "decoder.layers.0.multihead_attn.out_proj.weight", "decoder.layers.0.linear2.bias"} <= keys
    bf = small(batch_first=True)
    bf.load_state_dict(model.state_dict())
    np.testing.assert_allclose(bf(src.transpose(0, 1), tgt.transpose(0, 1), tgt_mask=mask).numpy(),
                               model(src, tgt, tgt_mask=mask).transpose(0, 1).numpy(), atol=1e-12)


def test_square_subsequent_mask_and_errors():
    mask = nn.Transformer.generate_square_subsequent_mask(3).numpy()
    np.testing.assert_array_equal(mask, np.triu(np.full((3, 3), -np.inf), 1))
    assert mask.dtype == np.float32
    model = small()
    with pytest.raises(ShapeError, match="batch number of src and tgt must be equal"):
        model(nerve.zeros(5, 3, 8, dtype=nerve.float64), nerve.zeros(4, 2, 8, dtype=nerve.float64))
    with pytest.raises(ShapeError, match="equal to d_model = 8"):
        model(nerve.zeros(5, 3, 6, dtype=nerve.float64), nerve.zeros(4, 3, 6, dtype=nerve.float64))


def test_transformer_learns_to_copy():
    """Teacher-forced copying of short sequences: the causal decoder must read the source through attention."""
    nerve.manual_seed(0)
    vocab, d = 6, 16
    emb, head = nn.Embedding(vocab, d), nn.Linear(d, vocab)
    model = nn.Transformer(d, 2, 1, 1, 32, 0.0, batch_first=True)
    pos = nn.SinusoidalPositionalEncoding(d, batch_first=True)
    params = list(emb.parameters()) + list(model.parameters()) + list(head.parameters())
    opt = nerve.optim.Adam(params, lr=3e-3)
    data = RNG.integers(1, vocab, (32, 5))
    src = nerve.tensor(data)
    tgt_in = nerve.tensor(np.concatenate([np.zeros((32, 1), dtype=np.int64), data[:, :-1]], 1))
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    for _ in range(150):
        logits = head(model(pos(emb(src)), pos(emb(tgt_in)), tgt_mask=mask))
        loss = nerve.functional.cross_entropy(logits.reshape(-1, vocab), src.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = (logits.argmax(-1).numpy() == data).mean()
    assert accuracy > 0.9, accuracy


def test_lazy_linear_and_conv():
    nerve.manual_seed(0)
    lazy = nn.LazyLinear(3)
    assert lazy.has_uninitialized_params() and list(lazy.parameters()) == []
    seen = []
    lazy.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    y = lazy(nerve.randn(2, 5))
    assert type(lazy) is nn.Linear and lazy.weight.shape == (3, 5) and lazy.bias.shape == (3,) and y.shape == (2, 3)
    assert seen == [(2, 3)] and lazy.in_features == 5
    assert sorted(lazy.state_dict()) == ["bias", "weight"]
    bound = 1 / np.sqrt(5)
    assert np.abs(lazy.bias.numpy()).max() <= bound
    conv = nn.LazyConv2d(4, 3, padding=1, bias=False)
    assert conv(nerve.randn(2, 3, 5, 5)).shape == (2, 4, 5, 5)
    assert type(conv) is nn.Conv2d and conv.weight.shape == (4, 3, 3, 3) and conv.bias is None
    assert nn.LazyConv1d(2, 2)(nerve.randn(3, 7)).shape == (2, 6)  # unbatched
    with pytest.raises(ShapeError, match="LazyConv3d: expected a 4-d or 5-d input"):
        nn.LazyConv3d(2, 2)(nerve.randn(3, 7))
    seq = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(1))
    seq(nerve.randn(1, 6))
    opt = nerve.optim.SGD(seq.parameters(), lr=0.1)  # the dry run made the parameters an optimiser can take
    assert sum(p.numel() for p in seq.parameters()) == 6 * 4 + 4 + 4 + 1
    assert opt.param_groups


def test_lazy_transposed_convolutions_and_norms():
    conv = nn.LazyConvTranspose2d(4, 3, stride=2, output_padding=1, bias=False)
    assert conv(nerve.randn(1, 3, 5, 5)).shape == (1, 4, 12, 12)
    assert type(conv) is nn.ConvTranspose2d and conv.weight.shape == (3, 4, 3, 3) and conv.output_padding == (1, 1)
    for lazy, plain, x in [(nn.LazyBatchNorm1d(momentum=0.5), nn.BatchNorm1d, nerve.randn(4, 3)),
                           (nn.LazyBatchNorm2d(), nn.BatchNorm2d, nerve.randn(2, 3, 4, 4)),
                           (nn.LazyBatchNorm3d(affine=False), nn.BatchNorm3d, nerve.randn(2, 3, 2, 2, 2)),
                           (nn.LazyInstanceNorm2d(), nn.InstanceNorm2d, nerve.randn(3, 4, 4))]:
        out = lazy(x)
        assert type(lazy) is plain and lazy.num_features == 3 and out.shape == x.shape
    ref = nn.BatchNorm1d(3, momentum=0.5)
    ref(nerve.tensor(np.ones((2, 3))))  # a different batch: only the construction arguments are compared
    bn = nn.LazyBatchNorm1d(momentum=0.5)
    bn(nerve.randn(4, 3))
    assert bn.momentum == 0.5 and sorted(bn.state_dict()) == sorted(ref.state_dict())
