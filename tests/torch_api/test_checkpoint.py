"""``nerve.utils.checkpoint``: the same gradients as without it (dropout included), less memory held between
forward and backward, parameters reached without inputs that require grad, tuple outputs, sequential chunks."""
import tracemalloc

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.utils.checkpoint import checkpoint, checkpoint_sequential
from tests.helpers import T


def _block():
    nerve.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 6)).to(dtype=nerve.float64)


def _grads(model, x):
    return [p.grad.numpy().copy() for p in model.parameters()] + ([x.grad.numpy().copy()] if x.grad is not None
                                                                  else [])


def test_same_gradients_as_without_checkpoint_with_dropout():
    model = _block()
    rng = np.random.default_rng(0)
    x1, x2 = T(rng.normal(size=(5, 6)), requires_grad=True), None
    x2 = T(x1.numpy(), requires_grad=True)
    nerve.manual_seed(7)
    (model(x1) ** 2).sum().backward()
    plain = _grads(model, x1)
    model.zero_grad()
    nerve.manual_seed(7)
    out = checkpoint(model, x2, use_reentrant=False)
    assert out.grad_fn is not None and out.grad_fn.name == "_CheckpointBackward"
    nerve.manual_seed(123)  # the recomputation restores the forward's random state
    (out ** 2).sum().backward()
    for a, b in zip(plain, _grads(model, x2)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_parameters_get_gradients_when_no_input_requires_grad_and_closures_too():
    model = _block().eval()
    x = T(np.ones((2, 6)))
    scale = T([2.0], requires_grad=True)
    out = checkpoint(lambda t: model(t) * scale, x)
    # a plain function whose arguments need no gradient cannot be recomputed for one: it runs as a plain call
    assert out.grad_fn.name != "_CheckpointBackward"
    out.sum().backward()
    assert scale.grad is not None
    scale.grad = None
    out = checkpoint(model, x)
    assert out.grad_fn.name == "_CheckpointBackward"
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    y = T(np.ones((2, 6)), requires_grad=True)
    checkpoint(lambda t: model(t) * scale, y).sum().backward()
    assert scale.grad is not None and y.grad is not None  # a leaf used inside: summed into .grad


def test_tuple_outputs_and_keywords_and_errors():
    model = _block().eval()
    x = T(np.ones((2, 6)), requires_grad=True)
    a, b = checkpoint(lambda t, k=1.0: (model(t), t.sum() * k), x, k=3.0)
    assert a.shape == (2, 6) and b.shape == ()
    (a.sum() + b).backward()
    ref = T(np.ones((2, 6)), requires_grad=True)
    (model(ref).sum() + ref.sum() * 3.0).backward()
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), rtol=1e-12)
    model.zero_grad()
    (single,) = checkpoint(lambda t: (model(t),), x)
    assert single.shape == (2, 6)
    with pytest.raises(RuntimeError, match="differentiable once only"):
        nerve.autograd.grad(checkpoint(model, x).sum(), x, create_graph=True)
    with pytest.raises(TypeError, match="tensor or a tuple of tensors"):
        checkpoint(lambda t: "no", x)


def test_checkpoint_sequential_matches_and_holds_less_memory():
    nerve.manual_seed(0)
    deep = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(256, 256), nn.Tanh())])
    x = nerve.randn(512, 256)
    (deep(x) ** 2).mean().backward()
    plain = [p.grad.numpy().copy() for p in deep.parameters()]
    deep.zero_grad()
    (checkpoint_sequential(deep, 3, x, use_reentrant=False) ** 2).mean().backward()
    for a, b in zip(plain, [p.grad.numpy() for p in deep.parameters()]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

    def held(run):
        deep.zero_grad()
        tracemalloc.start()
        out = run()
        current = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del out
        return current

    plain_bytes = held(lambda: deep(x))  # twelve (512, 256) activations
    whole = held(lambda: checkpoint(deep, x))  # only the output
    chunked = held(lambda: checkpoint_sequential(deep, 3, x))  # two chunk outputs and the last chunk's four
    assert whole < 0.2 * plain_bytes and chunked < 0.6 * plain_bytes, (whole, chunked, plain_bytes)
