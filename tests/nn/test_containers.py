"""Containers: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict and Identity: indexing, editing,
registration, state dicts, repr, config, deep copies."""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import nerve
import nerve.nn as nn
from tests.helpers import T


def test_sequential_indexing_len_append_insert_delete():
    seq = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    assert head(nerve.randn(5, 2)).shape == (5, 4)
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and seq(nerve.randn(5, 2)).shape == (5, 1)
    seq.insert(0, nn.Identity())
    assert [type(m).__name__ for m in seq] == ["Identity", "Linear", "ReLU", "Linear", "Sigmoid"]
    del seq[0]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    seq[1] = nn.Tanh()
    assert isinstance(seq[1], nn.Tanh)
    with pytest.raises(IndexError, match="index 7 is out of range for Sequential of length 4"):
        seq[7]
    named = nn.Sequential(OrderedDict(enc=nn.Linear(2, 2), act=nn.ReLU()))
    assert named.enc is named[0] and list(named.state_dict()) == ["enc.weight", "enc.bias"]


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.Linear(2, 1))
    assert isinstance(layers[1:], nn.ModuleList) and len(layers[1:]) == 3
    assert layers.pop().out_features == 1 and len(layers) == 3
    blocks = nn.ModuleDict({"a": nn.Linear(2, 3), "keys": nn.ReLU()})
    assert "a" in blocks and list(blocks) == ["a", "keys"] and len(blocks) == 2
    assert list(blocks.keys()) == ["a", "keys"]  # an entry named like a method does not hide the method
    assert isinstance(blocks["keys"], nn.ReLU)
    blocks["b"] = nn.Linear(3, 1)
    assert [n for n, _ in blocks.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    del blocks["a"]
    assert list(blocks) == ["keys", "b"]


def test_identity_repr_config_and_deepcopy():
    assert nn.Identity(3, foo=1)(x := nerve.ones(2)) is x
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.25))
    assert repr(seq) == ("Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n"
                         "  (1): ReLU()\n  (2): Dropout(p=0.25)\n)")
    assert seq.get_config() == {"layers": [
        {"type": "Linear", "config": {"in_features": 2, "out_features": 3, "bias": True}},
        {"type": "ReLU", "config": {}}, {"type": "Dropout", "config": {"p": 0.25}}]}
    twin = copy.deepcopy(seq)
    assert twin[0].weight is not seq[0].weight and twin._parameters is not seq._parameters
    np.testing.assert_array_equal(twin[0].weight.numpy(), seq[0].weight.numpy())
    assert twin[0].weight is twin[0]._parameters["weight"]


def test_parameter_list_registration():
    plist = nn.ParameterList([nn.Parameter(nerve.ones(2)), nerve.zeros(3)])
    plist.append(nerve.randn(1, 2))
    assert len(plist) == 3 and all(isinstance(p, nn.Parameter) for p in plist)
    assert list(plist.state_dict()) == ["0", "1", "2"]
    assert [tuple(p.shape) for p in plist.parameters()] == [(2,), (3,), (1, 2)]
    assert plist[-1] is plist[2] and len(plist[1:]) == 2

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nerve.ones(2), nerve.ones(2)])

        def forward(self, x):
            return x * self.scales[0] * self.scales[1]

    model = Holder()
    assert list(model.state_dict()) == ["scales.0", "scales.1"]
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    model(T([1.0, 2.0])).sum().backward()
    np.testing.assert_allclose(model.scales[0].grad.numpy(), [1.0, 2.0])
    twin = Holder()
    model.scales[1].data[...] = 3.0
    twin.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(twin.scales[1].numpy(), [3.0, 3.0])
    with pytest.raises(TypeError, match="ParameterList holds Parameters or Tensors, got int"):
        plist.append(3)
    with pytest.raises(IndexError):
        plist[5]


def test_parameter_dict_registration():
    pdict = nn.ParameterDict({"alpha": nerve.ones(2), "beta": nn.Parameter(nerve.zeros(3))})
    pdict["gamma"] = nerve.ones(1)
    assert list(pdict.keys()) == ["alpha", "beta", "gamma"] and "beta" in pdict and len(pdict) == 3
    assert list(pdict.state_dict()) == ["alpha", "beta", "gamma"]
    assert isinstance(pdict["alpha"], nn.Parameter) and len(list(pdict.parameters())) == 3
    del pdict["beta"]
    assert list(pdict.state_dict()) == ["alpha", "gamma"] and "beta" not in pdict
    assert pdict.pop("gamma").shape == (1,) and list(pdict) == ["alpha"]
    pdict.to(nerve.float64)
    assert pdict["alpha"].dtype == np.float64
    with pytest.raises(KeyError):
        del pdict["missing"]
    with pytest.raises(TypeError, match="ParameterDict holds Parameters or Tensors, got list"):
        pdict["x"] = [1.0]
