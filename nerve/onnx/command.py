"""``nerve export RUN_DIR model.onnx``: a finished run's model as ONNX, answering raw rows as ``nerve predict``
does (the run's input scaling and image reshaping are part of the graph; class names, or a language model's
vocabulary, in the file's metadata)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy

from nerve import nn
from nerve.tensor import Tensor

__all__ = ["add_parser", "run", "Standardized"]


class Standardized(nn.Module):
    """``model((x - mean) / std)``, reshaped to (N, 1, side, side) for image models: raw rows in, answers out."""

    def __init__(self, model, mean, std, image_side: int | None) -> None:
        super().__init__()
        self.model, self.side = model, image_side
        self.register_buffer("mean", Tensor(numpy.asarray(mean, numpy.float32)))
        self.register_buffer("std", Tensor(numpy.asarray(std, numpy.float32)))

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.mean) / self.std
        if self.side is not None:
            x = x.reshape(x.shape[0], 1, self.side, self.side)
        return self.model(x)


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``export`` sub-command to an argparse sub-parsers object."""
    p = sub.add_parser("export", help="write a finished run's model as ONNX (raw feature rows in, answers out)")
    p.add_argument("run_dir")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17, written with IR version 8)")
    p.add_argument("--no-check", action="store_true", dest="no_check",
                   help="skip running the file in onnxruntime against nerve on random rows")
    return p


def _language_model(run_dir: Path, cfg: dict):
    """(model, example token ids (2, block_size), vocabulary) of a finished language-model run."""
    import nerve
    from nerve.cli.common import CLIError
    from nerve.cli.data import RUN_KEY
    from nerve.cli.lm import load_lm
    path = run_dir / "model.safetensors"
    if not path.exists():
        raise CLIError(f"{run_dir} has no model.safetensors: the run did not finish")
    try:
        meta, state = nerve.io.load_metadata(path), nerve.load(path)
    except (nerve.io.CorruptFileError, OSError) as exc:
        raise CLIError(f"cannot use the weights in {path}: {exc}") from None
    if RUN_KEY not in meta:
        raise CLIError(f"{path} holds no vocabulary (written by an older nerve)")
    model, chars = load_lm(run_dir, cfg, meta, state)
    tokens = numpy.random.default_rng(0).integers(0, len(chars), (4, cfg["block_size"]))
    return model.eval(), tokens, chars


def run(args: argparse.Namespace) -> int:
    """Export the run, check it in onnxruntime (unless --no-check), print one line per step."""
    from nerve.cli.common import LM_MODELS, CLIError, run_config
    from nerve.cli.data import load_run
    from nerve.onnx import check
    from nerve.onnx.export import build, require_onnx

    run_dir = Path(args.run_dir)
    cfg = run_config(run_dir) if run_dir.is_dir() else None
    if cfg is not None and cfg["model"] == "gan":
        raise CLIError("export: --model gan runs are not exported by the command; use "
                       "nerve.onnx.export(generator, noise, path) from Python")
    if cfg is not None and cfg["model"] in LM_MODELS:
        wrapped, rows, chars = _language_model(run_dir, cfg)
        names, what = (["tokens"], ["logits"]), f"input 'tokens' (batch, {cfg['block_size']}) character ids"
        props = {"nerve.vocabulary": chars}
    else:
        prep = load_run(args.run_dir)
        side = int(round(prep.n_features ** 0.5)) if prep.image else None
        wrapped = Standardized(prep.answering_model(), prep.mean, prep.std, side).eval()
        rows = numpy.random.default_rng(0).normal(size=(4, prep.n_features)).astype(numpy.float32)
        rows = rows * prep.std + prep.mean
        names = (["features"], ["scores" if prep.classes is not None else "prediction"])
        what, props = f"input 'features' (batch, {prep.n_features}) raw rows", {}
        if prep.classes is not None:
            props["nerve.classes"] = " ".join(map(str, prep.classes))
    proto = build(wrapped, rows[:2], opset=args.opset, input_names=names[0], output_names=names[1])
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    require_onnx().save(proto, args.output)
    print(f"wrote {args.output}: {what}, opset {args.opset}")
    if not args.no_check:
        report = check(wrapped, args.output, rows)
        print(f"onnxruntime: {report}")
        if not report.ok:
            return 2
    return 0
