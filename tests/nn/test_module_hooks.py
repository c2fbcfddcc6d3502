"""Module hooks beyond forward hooks: full backward hooks and pre-hooks (against the gradients the engine
computes), forward hooks with kwargs and prepend, state-dict hooks, extra state, and the small Module methods
PyTorch code calls (half, type, to_empty, set_submodule, load_state_dict(assign=True))."""
import numpy as np
import pytest

import nerve
from nerve import nn
from tests.helpers import T


def _net():
    nerve.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(dtype=nerve.float64)


def test_full_backward_hook_sees_grad_input_and_grad_output():
    net = _net()
    seen = {}
    net[1].register_full_backward_hook(lambda m, gi, go: seen.update(gi=gi, go=go))
    x = T(np.random.default_rng(0).normal(size=(5, 3)), requires_grad=True)
    h = net[0](x)
    h.retain_grad()
    out = net[1](h)
    out.retain_grad()
    net[2](out).sum().backward()
    np.testing.assert_allclose(seen["go"][0].numpy(), out.grad.numpy())
    np.testing.assert_allclose(seen["gi"][0].numpy(), h.grad.numpy())


def test_hooks_replace_gradients_and_first_layer_gets_none():
    net = _net()
    x = T(np.ones((2, 3)))  # the input needs no gradient: grad_input is (None,)
    calls = []
    net[0].register_full_backward_hook(lambda m, gi, go: calls.append((gi, go[0].shape)))
    net[1].register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))  # cut the gradient below the Tanh
    net(x).sum().backward()
    assert calls == [((None,), (2, 4))]
    assert not net[0].weight.grad.numpy().any() and net[2].weight.grad.numpy().any()
    net.zero_grad()
    handle = net[2].register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))
    net[1]._backward_hooks.clear()
    net(x).sum().backward()
    scaled = net[2].weight.grad.numpy().copy()
    handle.remove()
    net.zero_grad()
    net(x).sum().backward()
    np.testing.assert_allclose(scaled, 3 * net[2].weight.grad.numpy())


def test_replacing_an_earlier_inputs_gradient_is_refused():
    class Add(nn.Module):
        def forward(self, a, b):
            return a + b
    add = Add()
    add.register_full_backward_hook(lambda m, gi, go: (gi[0] * 2, gi[1] * 2))
    a, b = T([1.0], requires_grad=True), T([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="replace grad_input only for a module called with one tensor"):
        add(a, b).sum().backward()


def test_forward_hooks_with_kwargs_and_prepend():
    lin = nn.Linear(2, 2)
    order = []
    lin.register_forward_hook(lambda m, a, o: order.append("first"))
    lin.register_forward_hook(lambda m, a, o: order.append("prepended"), prepend=True)

    def pre(m, args, kwargs):
        return (args[0] * 0,), kwargs
    lin.register_forward_pre_hook(pre, with_kwargs=True)
    lin.register_forward_hook(lambda m, a, k, o: order.append(sorted(k)), with_kwargs=True)
    out = lin(nerve.ones(1, 2))
    assert order == ["prepended", "first", []]
    np.testing.assert_allclose(out.detach().numpy(), lin.bias.detach().numpy()[None])


def test_state_dict_hooks_extra_state_and_small_methods():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.count = 0

        def get_extra_state(self):
            return {"count": self.count}

        def set_extra_state(self, state):
            self.count = state["count"]
    a = Counter()
    a.count = 7
    seen = []
    a.register_state_dict_pre_hook(lambda m, prefix, keep: seen.append(prefix))
    state = a.state_dict()
    assert state["_extra_state"] == {"count": 7} and seen == [""]
    b = Counter()
    b.register_load_state_dict_post_hook(lambda m, keys: seen.append(keys))
    b.load_state_dict(state)
    assert b.count == 7 and seen[-1].missing_keys == [] and seen[-1].unexpected_keys == []
    c = nn.Linear(2, 2)
    c.load_state_dict({"weight": nerve.ones(2, 2), "bias": nerve.zeros(2)}, assign=True)
    assert c.weight.numpy().tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert nn.Linear(2, 2).half().weight.dtype == nerve.float16
    assert nn.Linear(2, 2).type(nerve.float64).weight.dtype == nerve.float64
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    seq.set_submodule("1", nn.Tanh())
    assert isinstance(seq[1], nn.Tanh)
    with pytest.raises(AttributeError, match="no submodule 'x'"):
        seq.set_submodule("x", nn.Tanh())
    with pytest.raises(TypeError, match="no bfloat16"):
        seq.bfloat16()
    assert seq.to_empty(device="cpu") is seq and seq.share_memory() is seq and seq.compile() is None
