"""ONNX export against nerve's own forward pass, run by onnxruntime at two batch sizes, and its errors."""
import sys

import numpy
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the extra nerve[onnx]")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need the extra nerve[onnx]")

import nerve  # noqa: E402
import nerve.onnx as nx  # noqa: E402
from nerve import nn  # noqa: E402
from nerve.models import GPT, MLP, LeNet5, SmallCNN  # noqa: E402


class Recurrent(nn.Module):
    """A two-layer recurrent encoder read at its last step, batch-first or time-major."""

    def __init__(self, cell, batch_first: bool = True) -> None:
        super().__init__()
        self.rnn = cell(6, 8, num_layers=2, batch_first=batch_first)
        self.head = nn.Linear(8, 3)
        self.batch_first = batch_first

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1] if self.batch_first else out[-1])


class LastState(nn.Module):
    """An LSTM's final (h, c) as two outputs: the recurrent layer's other results."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 5)

    def forward(self, x):
        _, (h, c) = self.rnn(x)
        return h, c


class CrossAttention(nn.Module):
    """Attention of x over a projection of itself: the unpacked path (scaled_dot_product_attention), or with
    ``weights`` the composed one that also returns the head-averaged attention matrix."""

    def __init__(self, weights: bool) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 16)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)
        self.weights = weights

    def forward(self, x):
        kv = self.proj(x)
        out, w = self.mha(x, kv, kv, need_weights=self.weights)
        return (out, w) if self.weights else out


def _tokens(vocab: int, t: int):
    return lambda b: nerve.tensor(numpy.random.default_rng(b).integers(0, vocab, (b, t)))


def _normal(*shape):
    return lambda b: nerve.tensor(numpy.random.default_rng(b).normal(size=(b, *shape)).astype(numpy.float32))


CASES = {
    "mlp": (lambda: MLP(12, [16, 8], 3), _normal(12)),
    "lenet5": (lambda: LeNet5(), _normal(1, 28, 28)),
    "lenet5_tanh_avg": (lambda: LeNet5(activation="tanh", pool="avg"), _normal(1, 28, 28)),
    "small_cnn": (lambda: SmallCNN(), _normal(1, 28, 28)),
    "lstm": (lambda: Recurrent(nn.LSTM), _normal(5, 6)),
    "gru": (lambda: Recurrent(nn.GRU), _normal(5, 6)),
    "rnn_time_major": (lambda: Recurrent(nn.RNN, batch_first=False), lambda b: _normal(b, 6)(5)),  # (T, B, F)
    "gpt": (lambda: GPT(40, block_size=16, n_layer=2, n_head=2, n_embd=16), _tokens(40, 9)),
    "transformer_encoder": (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True,
                                                                                    norm_first=True), 2),
                            _normal(7, 16)),
    "cross_attention": (lambda: CrossAttention(weights=False), _normal(7, 16)),
    "attention_weights": (lambda: CrossAttention(weights=True), _normal(7, 16)),
    "transformer_encoder_post_norm": (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(
        16, 4, 32, batch_first=True, activation="gelu"), 2, norm=nn.LayerNorm(16)), _normal(7, 16)),
    "conv_zoo": (lambda: nn.Sequential(
        nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(4), nn.GELU(),
        nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.GroupNorm(2, 6), nn.SiLU(), nn.MaxPool2d(3, 2, padding=1),
        nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), nn.Flatten(), nn.Dropout(0.5), nn.LayerNorm(96),
        nn.Linear(96, 5), nn.Softmax(-1)), _normal(3, 7, 7)),  # 7 -> 14 -> 7 -> 4 (a partial window)
}


def _run(path, x) -> list:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: numpy.asarray(x.data)})


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnxruntime_equals_nerve_at_two_batch_sizes(tmp_path, name):
    nerve.manual_seed(0)
    build, make = CASES[name]
    model = build()
    for m in model.modules():  # non-trivial normalisation statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.data[...] = numpy.linspace(-0.5, 0.5, m.running_mean.shape[0])
            m.running_var.data[...] = numpy.linspace(0.5, 2.0, m.running_var.shape[0])
    model.eval()
    path = tmp_path / f"{name}.onnx"
    axis = 1 if name == "rnn_time_major" else 0
    dynamic = {"input": {axis: "batch"}, "output": {0: "batch"}} if axis else None
    nx.export(model, make(2), path, dynamic_axes=dynamic)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == 8 and proto.opset_import[0].version == 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[axis].dim_param == "batch"
    for batch in (3, 6):
        x = make(batch)
        with nerve.no_grad():
            want = model(x)
        want = [w.numpy() for w in (want if isinstance(want, tuple) else (want,))]
        got = _run(path, x)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == numpy.float32
            numpy.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=f"{name} batch {batch}")


def test_lstm_final_states_and_the_gate_order(tmp_path):
    """h_n and c_n of ONNX's LSTM equal nerve's: a wrong gate order would not (checked by permuting it)."""
    nerve.manual_seed(1)
    model = LastState().eval()
    x = nerve.tensor(numpy.random.default_rng(0).normal(size=(6, 3, 4)).astype(numpy.float32))
    nx.export(model, x, tmp_path / "state.onnx", dynamic_axes={"input": {1: "batch"}, "output_0": {0: "batch"},
                                                                 "output_1": {0: "batch"}})
    h, c = model(x)
    got = _run(tmp_path / "state.onnx", x)
    numpy.testing.assert_allclose(got[0], h.numpy(), rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(got[1], c.numpy(), rtol=1e-5, atol=1e-5)
    proto = onnx.load(str(tmp_path / "state.onnx"))
    w = next(i for i in proto.graph.initializer if i.name.startswith("W"))
    rows = onnx.numpy_helper.to_array(w)[0]
    hidden = 5
    w_ih = model.rnn.weight_ih_l0.numpy()
    numpy.testing.assert_array_equal(rows[hidden:2 * hidden], w_ih[3 * hidden:])  # ONNX's o is nerve's 4th block


def test_check_agrees_and_names_the_first_diverging_node(tmp_path):
    nerve.manual_seed(0)
    model = LeNet5().eval()
    x = _normal(1, 28, 28)(2)
    path = tmp_path / "lenet.onnx"
    nx.export(model, x, path)
    report = nx.check(model, path, x)
    assert report.ok and report.compared >= 8 and report.max_abs_diff < 1e-5, str(report)
    proto = onnx.load(str(path))
    for init in proto.graph.initializer:  # spoil the second convolution's bias in the file
        if init.name == "3.bias":
            init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init) + 1, "3.bias"))
    onnx.save(proto, str(path))
    report = nx.check(model, path, x)
    assert not report.ok
    assert "(Conv) for nerve's Conv in module '3'" in report.first_divergence, report.first_divergence


# --- errors ---------------------------------------------------------------------------------------------
class Rolling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return nerve.roll(self.fc(x), 1, 1)


class FromNumpy(nn.Module):
    """Builds a value from the input's array outside nerve's ops: not replayable in ONNX."""

    def forward(self, x):
        return x + nerve.tensor(x.numpy().mean(axis=0))


def test_training_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"training mode \(MLP, .*call model.eval\(\) first"):
        nx.export(MLP(4, [8], 2), nerve.randn(2, 4), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_an_unsupported_op_names_the_op_and_its_module(tmp_path):
    with pytest.raises(nx.ExportError, match=r"no ONNX mapping for the op Roll \(called in module 'Rolling'\)"):
        nx.export(Rolling().eval(), nerve.randn(2, 4), tmp_path / "r.onnx")
    assert not (tmp_path / "r.onnx").exists()


def test_a_constant_computed_from_the_input_is_refused(tmp_path):
    with pytest.raises(nx.ExportError, match="argument 'b' of Add in module 'FromNumpy' is a constant that changes"):
        nx.export(FromNumpy().eval(), nerve.randn(2, 4), tmp_path / "c.onnx")


def test_opset_and_missing_onnx(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"opset must be an int in \[13, "):
        nx.export(MLP(4, [8], 2).eval(), nerve.randn(2, 4), tmp_path / "m.onnx", opset=99)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'nerve\[onnx\]'"):
        nx.export(MLP(4, [8], 2).eval(), nerve.randn(2, 4), tmp_path / "m.onnx")


def test_supported_ops_cover_the_model_zoo():
    for op in ("Linear", "Conv", "ConvTranspose", "MaxPool", "AvgPool", "Normalize", "Embedding", "GetItem",
               "Reshape", "Permute", "Concat", "Softmax", "PackedSelfAttention", "ScaledDotProductAttention",
               "RecurrentLayer", "GELU", "ReLU"):
        assert op in nx.SUPPORTED_OPS
