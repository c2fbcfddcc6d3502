"""Weights from elsewhere: load_state_dict's one report of missing, unexpected and mis-shaped keys; PyTorch
safetensors files (written here byte by byte with PyTorch's key names, no torch needed) loaded by name or in
order; earlier runs as a starting point; the shipped pre-trained networks, checked by hash and accuracy."""
import hashlib
import importlib
import json
import shutil
import struct

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.models import MLP, LeNet5
from nerve.train import evaluate
from tests.test_scripts import data

# NOTE: the module, not the function nerve.models may export under the same name
zoo = importlib.import_module("nerve.models.pretrained")


def write_safetensors(path, tensors: dict) -> None:
    """The safetensors layout (8-byte little-endian header length, JSON header, raw bytes), as PyTorch's
    safetensors.torch.save_file writes it for float32 tensors."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _torch_mlp_weights(rng):
    """nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).state_dict() in PyTorch's naming."""
    return {"0.weight": rng.normal(size=(7, 5)), "0.bias": rng.normal(size=7), "2.weight": rng.normal(size=(3, 7)),
            "2.bias": rng.normal(size=3)}


@pytest.mark.parametrize("prefix", ["", "module."])
def test_pytorch_safetensors_load_by_name(tmp_path, prefix):
    rng = np.random.default_rng(0)
    w = _torch_mlp_weights(rng)
    write_safetensors(tmp_path / "mlp.safetensors", {prefix + k: v for k, v in w.items()})
    model = MLP(5, [7], 3)
    mapping = zoo.load_torch_state(model, tmp_path / "mlp.safetensors")
    assert mapping == {k: k for k in w}
    x = rng.normal(size=(4, 5)).astype(np.float32)
    expected = np.maximum(x @ w["0.weight"].T + w["0.bias"], 0) @ w["2.weight"].T + w["2.bias"]
    np.testing.assert_allclose(model(nerve.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_pytorch_weights_with_other_names_load_in_order(tmp_path):
    rng = np.random.default_rng(1)
    reference = LeNet5(1, 10)
    names = ["conv1", "conv2", "fc1", "fc2", "fc3"]  # a custom torch nn.Module with attributes, same layers
    theirs = {}
    for name, (key, value) in zip([n + s for n in names for s in (".weight", ".bias")], reference.state_dict().items()):
        theirs[name] = rng.normal(size=value.shape)
    write_safetensors(tmp_path / "net.safetensors", theirs)
    model = LeNet5(1, 10)
    mapping = zoo.load_torch_state(model, tmp_path / "net.safetensors")
    assert mapping["0.weight"] == "conv1.weight" and mapping["11.bias"] == "fc3.bias"
    np.testing.assert_allclose(model.state_dict()["3.weight"].numpy(), theirs["conv2.weight"].astype(np.float32))


def test_weights_of_another_architecture_are_refused_with_every_key_named(tmp_path):
    rng = np.random.default_rng(2)
    write_safetensors(tmp_path / "mlp.safetensors", _torch_mlp_weights(rng))
    with pytest.raises(RuntimeError) as info:
        zoo.load_torch_state(MLP(5, [8], 3), tmp_path / "mlp.safetensors")
    assert "0.weight: checkpoint (7, 5) vs model (8, 5)" in str(info.value)
    assert "2.weight: checkpoint (3, 7) vs model (3, 8)" in str(info.value)


def test_load_state_dict_reports_missing_unexpected_and_misshaped_keys_together():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    state = {"0.weight": np.zeros((4, 2), np.float32), "1.weight": np.zeros((1, 3), np.float32),
             "1.bias": np.zeros(1, np.float32), "head.weight": np.zeros(1, np.float32)}
    before = model.state_dict()["1.weight"].numpy().copy()
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing ['0.bias']" in message and "unexpected ['head.weight']" in message
    assert "0.weight: checkpoint (4, 2) vs model (3, 2)" in message
    assert np.array_equal(model.state_dict()["1.weight"].numpy(), before)  # nothing changed


def test_load_init_from_a_run_directory(tmp_path):
    nerve.manual_seed(0)
    source = MLP(5, [7], 3)
    state = dict(source.state_dict())
    state["preprocess.mean"] = nerve.zeros(5)
    (tmp_path / "run").mkdir()
    nerve.save(state, tmp_path / "run" / "model.safetensors")
    target = MLP(5, [7], 3)
    report = zoo.load_init(target, tmp_path / "run")
    assert report["skipped"] == [] and report["missing"] == []
    assert np.array_equal(target.state_dict()["0.weight"].numpy(), source.state_dict()["0.weight"].numpy())
    other = MLP(5, [7], 4)
    with pytest.raises(RuntimeError, match="2.weight: checkpoint \\(3, 7\\) vs model \\(4, 7\\)"):
        zoo.load_init(other, tmp_path / "run")
    report = zoo.load_init(other, tmp_path / "run", skip_mismatched=True)
    assert report["skipped"] == ["2.bias", "2.weight"] and report["missing"] == ["2.bias", "2.weight"]
    assert np.array_equal(other.state_dict()["0.bias"].numpy(), source.state_dict()["0.bias"].numpy())
    with pytest.raises(FileNotFoundError, match="without model.safetensors"):
        zoo.load_init(other, tmp_path)
    with pytest.raises(FileNotFoundError, match="no file"):
        zoo.load_init(other, tmp_path / "missing.safetensors")


def _digits_test_split():
    from sklearn.model_selection import train_test_split

    from nerve.data.datasets import load_digits

    X, y = load_digits()
    _, Xte, _, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return Xte, yte


def test_shipped_digits_mlp_has_its_recorded_accuracy():
    model = zoo.pretrained("digits-mlp")
    info = model.pretrained_info
    assert info["architecture"] == "MLP" and "Adam" in info["recipe"] and not model.training
    Xte, yte = _digits_test_split()
    X = ((Xte - info["input_mean"]) / info["input_std"]).astype(np.float32)
    accuracy = evaluate(model, (X, yte), metrics=["accuracy"])["accuracy"]
    assert accuracy == pytest.approx(info["test_accuracy"], abs=1e-4) and accuracy > 0.95
    head = zoo.pretrained("digits-mlp", num_classes=2)
    assert head.get_config()["out_features"] == 2 and head(nerve.tensor(X[:3])).shape == (3, 2)


def test_shipped_fashion_lenet_has_its_recorded_accuracy():
    root = data("fashion-mnist")
    from nerve.data.datasets import load_fashion_mnist

    model = zoo.pretrained("fashion-lenet")
    info = model.pretrained_info
    X, y = load_fashion_mnist(root, train=False)
    X = ((X[:2000] - info["input_mean"]) / info["input_std"]).astype(np.float32)
    accuracy = evaluate(model, (X, y[:2000]), metrics=["accuracy"], batch_size=500)["accuracy"]
    assert abs(accuracy - info["test_accuracy"]) < 0.02 and accuracy > 0.85


def test_shipped_files_are_small_and_checked_by_hash(tmp_path, monkeypatch):
    for name in zoo.available():
        path = zoo.WEIGHTS / zoo.REGISTRY[name][0]
        assert path.stat().st_size < 1_000_000
        assert hashlib.sha256(path.read_bytes()).hexdigest() == zoo.REGISTRY[name][1]
    changed = tmp_path / "w"
    shutil.copytree(zoo.WEIGHTS, changed)
    target = changed / zoo.REGISTRY["digits-mlp"][0]
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 1
    target.write_bytes(bytes(raw))
    monkeypatch.setattr(zoo, "WEIGHTS", changed)
    with pytest.raises(ValueError, match="has sha256 .* not the .* it shipped with"):
        zoo.pretrained("digits-mlp")
    with pytest.raises(ValueError, match="no weights named 'imagenet'; available: \\['digits-mlp'"):
        zoo.pretrained("imagenet")


def test_freeze_by_spec_names_features_or_submodules():
    model = LeNet5(1, 10)
    names = zoo.freeze_by_spec(model, "features")
    assert names == [str(i) for i in range(11)]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["11.weight", "11.bias"]
    model = MLP(4, [8, 8], 2)
    assert zoo.freeze_by_spec(model, "0, 2") == ["0", "2"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["4.weight", "4.bias"]
    with pytest.raises(ValueError, match="'encoder' is not a submodule of MLP"):
        zoo.freeze_by_spec(model, "encoder")
    with pytest.raises(ValueError, match="no submodule named"):
        zoo.freeze_by_spec(model, " , ")


def test_shipped_gpt_has_its_recorded_validation_loss():
    from nerve.data.datasets import load_shakespeare
    from nerve.data.text import CharVocab, random_windows, split_text

    text = load_shakespeare(data("tinyshakespeare"))
    model = zoo.pretrained("shakespeare-gpt")
    info = model.pretrained_info
    vocab = CharVocab(text)
    assert "".join(vocab.chars) == info["chars"]
    _, val_ids = split_text(vocab.encode(text), 0.1)
    rng = np.random.default_rng(1)  # the first 10 of the 50 batches the recorded loss averages
    with nerve.no_grad():
        loss = np.mean([model.loss(model(nerve.tensor(x)), nerve.tensor(y)).item()
                        for x, y in (random_windows(val_ids, 64, 32, rng) for _ in range(10))])
    assert abs(loss - info["val_loss"]) < 0.1 and loss < np.log(len(vocab.chars)) - 1.5
    with pytest.raises(ValueError, match="not a classifier"):
        zoo.pretrained("shakespeare-gpt", num_classes=3)
