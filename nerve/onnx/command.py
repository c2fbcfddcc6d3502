"""``nerve export RUN_DIR model.onnx``: a finished run's model as ONNX, answering raw rows as ``nerve predict``
does (the run's input scaling and image reshaping are part of the graph)."""
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


def run(args: argparse.Namespace) -> int:
    """Export the run, check it in onnxruntime (unless --no-check), print one line per step."""
    from nerve.cli.common import CLIError, LM_MODELS, run_config
    from nerve.cli.data import load_run
    from nerve.onnx import check, export

    cfg = run_config(Path(args.run_dir)) if Path(args.run_dir).is_dir() else None
    if cfg is not None and cfg["model"] in LM_MODELS + ("gan",):
        raise CLIError(f"export: --model {cfg['model']} runs are not exported by the command yet; "
                       "use nerve.onnx.export(model, example_input, path) from Python")
    prep = load_run(args.run_dir)
    model = prep.answering_model()
    side = int(round(prep.n_features ** 0.5)) if prep.image else None
    wrapped = Standardized(model, prep.mean, prep.std, side).eval()
    rows = numpy.random.default_rng(0).normal(size=(4, prep.n_features)).astype(numpy.float32)
    rows = rows * prep.std + prep.mean
    export(wrapped, rows[:2], args.output, opset=args.opset, input_names=["features"],
           output_names=["scores" if prep.classes is not None else "prediction"])
    print(f"wrote {args.output}: input 'features' (batch, {prep.n_features}) raw rows, opset {args.opset}")
    if not args.no_check:
        report = check(wrapped, args.output, rows)
        print(f"onnxruntime: {report}")
        if not report.ok:
            return 2
    return 0
