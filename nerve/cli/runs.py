"""``nerve evaluate`` and ``nerve predict``: use a finished run directory."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from nerve.cli.common import CLIError, has_column, load_run, read_csv


def cmd_evaluate(run_dir: str) -> int:
    import nerve
    prep = load_run(run_dir)
    result = nerve.train.evaluate(prep.model, (prep.Xte, prep.yte), loss=prep.loss, metrics=prep.metrics)
    print("test " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return 0



def read_rows(run_dir: str, prep, input_path: str, who: str) -> np.ndarray:
    """The rows of a CSV or .npy file as the run's features (checked: width, finite values)."""
    cfg = json.loads((Path(run_dir) / "config.json").read_text())
    if input_path.endswith(".npy"):
        X = np.load(input_path, allow_pickle=False).astype(np.float32)
        X = X.reshape(len(X), -1)
    else:
        X, _, _ = read_csv(input_path, cfg.get("target") if has_column(input_path, cfg.get("target")) else None)
    if X.shape[1] != prep.n_features:
        raise CLIError(f"{who}: {input_path} has {X.shape[1]} features per row, the model takes {prep.n_features}")
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise CLIError(f"{who}: {input_path} row {r}, feature {c} is NaN or infinite")
    return X


def cmd_predict(run_dir: str, input_path: str, output: str | None) -> int:
    import nerve
    prep = load_run(run_dir)
    cfg = json.loads((Path(run_dir) / "config.json").read_text())
    X = read_rows(run_dir, prep, input_path, "predict")
    model = prep.model
    if cfg["model"] == "snn":  # class scores from the spike counts
        from nerve.models.snn import SpikeCount
        model = SpikeCount(model)
    out = nerve.train.predict(model, prep.scale(X)).numpy()
    lines = ([prep.classes[i] for i in out.argmax(axis=1)] if prep.classes is not None
             else [" ".join(f"{v:.6g}" for v in row) for row in out])
    text = "\n".join(lines) + "\n"
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0
