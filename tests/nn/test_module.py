"""Module: registration, traversal, state dicts (strict and not), modes, dtype moves, hooks."""
from collections import OrderedDict

import numpy as np
import pytest

import nerve
import nerve.nn as nn
from tests.helpers import n_params


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 3)
        self.scale = nn.Parameter(nerve.ones(3))
        self.register_buffer("steps", nerve.zeros(1))
        self.register_buffer("cache", nerve.zeros(2), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def test_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert n_params(net) == 3 + 4 * 8 + 8 + 8 * 3 + 3
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache"]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "fc2"]
    assert len(list(net.modules())) == 4 and len(list(net.children())) == 3
    assert net.get_submodule("fc2") is net.fc2 and net.get_submodule("") is net
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert net.note == "plain attribute" and "note" not in net._parameters


def test_reassignment_and_deletion_keep_tables_in_step():
    net = Net()
    net.fc1 = nn.Linear(4, 8)
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "fc2"]  # a replaced child keeps its place
    net.fc2 = nn.Linear(8, 5)
    assert net._modules["fc2"] is net.fc2 and net.fc2.out_features == 5
    net.fc1.bias = None
    assert "fc1.bias" not in dict(net.named_parameters())
    del net.fc2
    assert "fc2" not in net._modules and not hasattr(net, "fc2")
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'scale'"):
        net.scale = nerve.ones(3)
    with pytest.raises(TypeError, match="child module 'act'"):
        net.act = 3
    net.steps = nerve.ones(1)
    assert net._buffers["steps"] is net.steps


def test_assigning_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Bad()


def test_shared_parameters_are_listed_once():
    fc = nn.Linear(3, 3)
    model = nn.Sequential(fc, nn.ReLU(), fc)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_state_dict_round_trip_and_sharing():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == ["scale", "steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(not t.requires_grad for t in sd.values())
    params_before = list(b.parameters())
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert all(x is y for x, y in zip(params_before, b.parameters()))  # in place: optimisers keep working
    x = nerve.randn(5, 4)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    assert np.shares_memory(sd["fc1.weight"].data, a.fc1.weight.data)
    b.load_state_dict({k: v.numpy().copy() for k, v in sd.items()})  # plain arrays work too


def test_load_state_dict_lists_every_problem_at_once_and_changes_nothing():
    model = nn.Sequential(OrderedDict(fc=nn.Linear(32, 10)))
    before = model.fc.weight.numpy().copy()
    ckpt = {"fc.weight": nerve.zeros(10, 64), "fc.extra": nerve.zeros(1)}
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(ckpt)
    assert str(info.value) == ("Sequential weights do not match: missing ['fc.bias']; "
                               "unexpected ['fc.extra']; "
                               "shape mismatch fc.weight: checkpoint (10, 64) vs model (10, 32)")
    np.testing.assert_array_equal(model.fc.weight.numpy(), before)


def test_load_state_dict_non_strict():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    sd = {"0.weight": nerve.ones(3, 2), "junk": nerve.zeros(1)}
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["0.bias", "1.weight", "1.bias"] and result.unexpected_keys == ["junk"]
    np.testing.assert_array_equal(model[0].weight.numpy(), np.ones((3, 2)))
    with pytest.raises(RuntimeError, match=r"shape mismatch 0.weight: checkpoint \(2, 2\) vs model \(3, 2\)"):
        model.load_state_dict({"0.weight": nerve.ones(2, 2)}, strict=False)


def test_train_eval_zero_grad_requires_grad_apply():
    net = Net()
    assert net.training and net.fc1.training
    assert net.eval() is net and not net.fc1.training and not net.act.training
    net.train()
    assert net.fc2.training
    net(nerve.randn(2, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.fc1.requires_grad_(False)
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ["scale", "fc2.weight", "fc2.bias"]
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Net"]


def test_to_dtype_keeps_parameter_identity():
    net = Net()
    params = list(net.parameters())
    net.to(nerve.float64)
    assert all(p.dtype == np.float64 for p in net.parameters()) and net.steps.dtype == np.float64
    assert all(x is y for x, y in zip(params, net.parameters()))
    assert net(nerve.randn(2, 4, dtype=nerve.float64)).dtype == np.float64
    net.float()
    assert net.fc1.weight.dtype == np.float32
    bn = nn.BatchNorm1d(3).double()
    assert bn.num_batches_tracked.dtype == np.int64  # integer buffers are not cast
    with pytest.raises(TypeError, match="only floating dtypes"):
        net.to(nerve.int64)


def test_forward_hooks_and_removal():
    fc = nn.Linear(2, 2)
    calls = []
    handle = fc.register_forward_hook(lambda m, args, out: calls.append(out.shape))
    pre = fc.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    out = fc(nerve.ones(3, 2))
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(fc.bias.numpy(), (3, 2)))
    assert calls == [(3, 2)]
    handle.remove()
    pre.remove()
    fc(nerve.ones(1, 2))
    assert calls == [(3, 2)]
