"""Freezing: frozen weights stay bit-identical through fit, frozen BatchNorm stays in eval mode across
model.train() with its running statistics still, unfreezing from a layer, gradual unfreezing, layer-wise
learning rates, new heads."""
import numpy as np
import pytest

import nerve
from nerve import nn, optim
from nerve.models import MLP, LeNet5, SmallCNN
from nerve.nn.freeze import freeze, is_frozen, layerwise_lr_groups, trainable_parameters, unfreeze
from nerve.train import Callback, fit
from nerve.train.transfer import GradualUnfreezing


def _blobs(n=256, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.normal(size=(n, 4)) + np.eye(3, 4)[y] * 3).astype(np.float32)
    return X, y


def _net():
    nerve.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3))


def _snapshot(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_frozen_weights_and_batchnorm_statistics_do_not_move_while_the_rest_learns():
    X, y = _blobs()
    model = _net()
    freeze(model, "0", "1")
    before = _snapshot(model)
    opt = optim.Adam(trainable_parameters(model), lr=1e-2)
    history = fit(model, (X, y), loss="cross_entropy", optimizer=opt, epochs=5,
                  batch_size=32, metrics=["accuracy"], verbose=0)
    after = _snapshot(model)
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                "1.num_batches_tracked"):
        assert np.array_equal(before[key], after[key]), key  # bit-identical
    assert not np.array_equal(before["5.weight"], after["5.weight"])
    assert history.history["accuracy"][-1] > 0.9
    assert model.training and not model[1].training  # fit's model.train() left the frozen BatchNorm in eval


def test_a_frozen_batchnorm_normalises_with_its_running_statistics_in_training_mode():
    bn = nn.BatchNorm1d(3)
    rng = np.random.default_rng(1)
    bn.running_mean.copy_(rng.normal(size=3).astype(np.float32))
    bn.running_var.copy_(rng.uniform(0.5, 2, size=3).astype(np.float32))
    bn.weight.data[...] = rng.normal(size=3)
    model = nn.Sequential(bn)
    freeze(model)
    model.train()
    x = rng.normal(size=(8, 3)).astype(np.float32)
    expected = (x - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps) * bn.weight.numpy() \
        + bn.bias.numpy()
    np.testing.assert_allclose(model(nerve.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert bn.num_batches_tracked.item() == 0
    unfreeze(model)
    model.train()
    assert bn.training and all(p.requires_grad for p in model.parameters())
    model(nerve.tensor(x))
    assert bn.num_batches_tracked.item() == 1  # tracks again once unfrozen


def test_requires_grad_and_unfreeze_from_a_layer():
    model = _net()
    model.requires_grad_(False)
    assert is_frozen(model) and trainable_parameters(model) == []
    unfreeze(model, from_layer=3)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["3.weight", "3.bias", "5.weight",
                                                                           "5.bias"]
    freeze(model)
    unfreeze(model, from_layer=-1)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["5.weight", "5.bias"]
    unfreeze(model, from_layer="1")
    assert model[1].training and not is_frozen(model[1])


@pytest.mark.parametrize("call, message", [
    (lambda m: freeze(m, "features"), "'features' is not a submodule of Sequential; its children are \\['0'"),
    (lambda m: unfreeze(m, "9"), "'9' is not a submodule"),
    (lambda m: unfreeze(m, from_layer=6), "from_layer=6 is out of range for 6 children"),
    (lambda m: unfreeze(m, from_layer="head"), "from_layer='head' is not a child"),
    (lambda m: unfreeze(m, "0", from_layer=1), "names or from_layer, not both"),
    (lambda m: layerwise_lr_groups(m, 0.1, decay=0), "decay must be in \\(0, 1\\]"),
    (lambda m: layerwise_lr_groups(m, 0.1, names=["0"]), "parameters are outside \\['0'\\]"),
    (lambda m: GradualUnfreezing("0"), "non-empty list"),
    (lambda m: GradualUnfreezing(["0"], every=0), "every must be a positive int"),
])
def test_bad_names_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(_net())


def test_layerwise_learning_rates_step_each_group_at_its_rate():
    model = _net()
    groups = layerwise_lr_groups(model, lr=0.1, decay=0.5)
    assert [g["lr"] for g in groups] == [0.1 * 0.5 ** 3, 0.1 * 0.5 ** 2, 0.1 * 0.5, 0.1]
    opt = optim.SGD(groups, lr=1.0)
    before = _snapshot(model)
    for p in model.parameters():
        p.grad = nerve.ones_like(p)
    opt.step()
    after = _snapshot(model)
    for key, lr in (("0.weight", 0.0125), ("1.bias", 0.025), ("3.weight", 0.05), ("5.bias", 0.1)):
        np.testing.assert_allclose(before[key] - after[key], lr, rtol=1e-5)


def test_gradual_unfreezing_trains_one_more_part_each_epoch():
    X, y = _blobs()
    model = _net()
    changed = []

    class Watch(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.before = _snapshot(self.model)

        def on_epoch_end(self, epoch, logs=None):
            after = _snapshot(self.model)
            changed.append(sorted({k.split(".")[0] for k in after if not np.array_equal(after[k], self.before[k])}))

    fit(model, (X, y), loss="cross_entropy", optimizer=optim.Adam(model.parameters(), lr=1e-2), epochs=4,
        batch_size=64, verbose=0, callbacks=[GradualUnfreezing(["0", "1", "3", "5"]), Watch()])
    assert changed == [["5"], ["3", "5"], ["1", "3", "5"], ["0", "1", "3", "5"]]
    assert GradualUnfreezing(["a", "b", "c"], every=2).trainable_at(3) == ["b", "c"]


@pytest.mark.parametrize("build, key", [(lambda: MLP(8, [6], 3), "out_features"),
                                        (lambda: LeNet5(1, 10), "num_classes"),
                                        (lambda: SmallCNN(1, 10, image_size=8), "num_classes")])
def test_replace_head(build, key):
    model = build().double()
    freeze(model)
    old = list(model.state_dict())
    head = model.replace_head(4)
    assert model.get_config()[key] == 4 and head.weight.dtype == np.float64
    assert head.out_features == 4 and all(p.requires_grad for p in head.parameters())
    assert list(model.state_dict()) == old  # same keys, same order
    rebuilt = type(model)(**model.get_config()).double()
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        model.replace_head(0)
