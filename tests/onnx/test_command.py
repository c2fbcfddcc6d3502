"""``nerve export RUN_DIR model.onnx`` on a finished run: the file answers raw rows as ``nerve predict`` does."""
import argparse

import numpy
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the extra nerve[onnx]")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need the extra nerve[onnx]")

from nerve.cli import main  # noqa: E402
from nerve.onnx import command  # noqa: E402


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    return parser.parse_args(["export", *argv])


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_export_a_run_answers_raw_rows_like_predict(tmp_path, capsys, model):
    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--model", model, "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert command.run(_args(str(run), str(tmp_path / "m.onnx"))) == 0
    out = capsys.readouterr().out
    assert "input 'features' (batch, 64) raw rows" in out and "onnxruntime: ok" in out
    rows = numpy.random.default_rng(3).integers(0, 17, (5, 64)).astype(numpy.float32)  # digits' pixel range
    numpy.save(tmp_path / "rows.npy", rows)
    assert main(["predict", str(run), str(tmp_path / "rows.npy")]) == 0
    predicted = capsys.readouterr().out.split()
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    scores = session.run(None, {"features": rows})[0]
    assert scores.shape == (5, 10)
    assert [str(i) for i in scores.argmax(axis=1)] == predicted
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert props["nerve.classes"] == " ".join(str(i) for i in range(10))


def test_export_a_language_model_run(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    run = tmp_path / "lm"
    assert main(["train", "--data", f"text:{text}", "--model", "char-gru", "--iters", "2", "--eval-iters", "1",
                 "--block-size", "12", "--out", str(run)]) == 0
    capsys.readouterr()
    assert command.run(_args(str(run), str(tmp_path / "lm.onnx"))) == 0
    out = capsys.readouterr().out
    assert "input 'tokens' (batch, 12) character ids" in out and "onnxruntime: ok" in out
    proto = onnx.load(str(tmp_path / "lm.onnx"))
    chars = {p.key: p.value for p in proto.metadata_props}["nerve.vocabulary"]
    assert set(chars) == set("to be or not to be, that is the question\n")
    ids = numpy.random.default_rng(1).integers(0, len(chars), (3, 12))
    logits = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"tokens": ids})[0]
    assert logits.shape == (3, 12, len(chars))


def test_export_refuses_a_missing_run(tmp_path):
    from nerve.cli.common import CLIError
    with pytest.raises(CLIError, match="is not a directory"):
        command.run(_args(str(tmp_path / "nothing"), str(tmp_path / "m.onnx")))
