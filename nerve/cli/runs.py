"""``nerve evaluate`` and ``nerve predict``: use a finished run directory, on its own (no training data needed
when a file is given), for every model kind ``nerve train`` makes."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from nerve.cli.common import CLIError, fmt, output_path, run_config
from nerve.cli.data import Data, Prepared, load_run
from nerve.cli.table import encode, match_columns, read_table, target_values


def _lm_run(run_dir: str):
    """(model, chars, cfg) when ``run_dir`` is a language model's finished run, else None."""
    import nerve
    from nerve.cli.common import LM_MODELS
    from nerve.cli.lm import load_lm
    run = Path(run_dir)
    cfg = run_config(run) if run.is_dir() else None
    if cfg is None or cfg["model"] not in LM_MODELS:
        return None
    path = run / "model.safetensors"
    if not path.exists():
        raise CLIError(f"{run} has no model.safetensors: the run did not finish"
                       + (f"; continue it with: nerve train --resume {run}"
                          if (run / "checkpoint.safetensors").exists() else ""))
    try:
        meta = nerve.io.load_metadata(path)
        state = nerve.load(path)
    except (nerve.io.CorruptFileError, OSError) as exc:
        raise CLIError(f"cannot use the weights in {path}: {exc}") from None
    model, chars = load_lm(run, cfg, meta, state)
    return model, chars, cfg


def read_rows(prep: Prepared, input_path: str, who: str, need_target: bool = False, no_header: bool = False):
    """The raw feature matrix (and targets when ``need_target``) of a CSV, .npy or .npz file, checked against
    the run's features: CSV columns by name, arrays by width."""
    info = prep.info
    if input_path.endswith((".npy", ".npz")):
        if not Path(input_path).is_file():
            raise CLIError(f"{who}: no file {input_path!r}")
        try:
            loaded = np.load(input_path, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                keys = {k.lower(): k for k in loaded.files}
                if "x" not in keys or (need_target and "y" not in keys):
                    raise CLIError(f"{who}: {input_path} must hold arrays 'x'" + (" and 'y'" if need_target else "")
                                   + f"; it has {loaded.files}")
                X, y = loaded[keys["x"]], loaded[keys["y"]] if "y" in keys else None
            else:
                if need_target:
                    raise CLIError(f"{who}: a .npy file has no targets; give a .npz with arrays x and y, or a CSV "
                                   f"with the column {info['target']!r}")
                X, y = loaded, None
        except ValueError as exc:
            raise CLIError(f"{who}: {input_path} cannot be read as a NumPy array file ({exc})") from None
        if X.dtype.kind not in "biuf":
            raise CLIError(f"{who}: {input_path} holds {X.dtype} values; the model takes numbers")
        X = X.reshape(len(X), -1).astype(np.float32) if X.ndim else X.reshape(1, 1)
        if X.shape[1] != prep.n_features:
            raise CLIError(f"{who}: {input_path} has {X.shape[1]} features per row, the model takes {prep.n_features}")
        if not np.isfinite(X).all():
            r, c = np.argwhere(~np.isfinite(X))[0]
            raise CLIError(f"{who}: {input_path} row {r}, feature {c} is NaN or infinite")
        return X, y
    table = read_table(input_path, no_header, who)
    spec = info["spec"] or [[name, None] for name in info["features"]]
    features = [name for name, _ in spec]
    target = info["target"]
    table = match_columns(table, features, info["columns"], target, need_target, who)
    X = encode(table, spec, who)
    y = None
    if need_target:
        if prep.classes is not None:
            names = table.column(target)
            unknown = sorted(set(names) - set(prep.classes))
            if unknown:
                raise CLIError(f"{who}: {input_path}: target values {unknown[:5]} are not among the run's classes "
                               f"{prep.classes}")
            index = {c: k for k, c in enumerate(prep.classes)}
            y = np.array([index[v] for v in names], dtype=np.int64)
        else:
            y = target_values(table, target)[0].astype(np.float32).reshape(-1, 1)
    return X, y


def cmd_evaluate(args) -> int:
    """Test metrics of a run: on a labelled file, or on the run's own test split (which needs its data)."""
    lm = _lm_run(args.run_dir)
    if lm is not None:
        from nerve.cli.lm import evaluate_lm, lm_text
        model, chars, cfg = lm
        if args.input:
            from nerve.cli.lm import read_text
            text, source = read_text(args.input, "evaluate"), args.input
        else:
            text = lm_text(cfg, "evaluate")
            text, source = text[int(len(text) * 0.9):], f"the validation tenth of {cfg['data']}"
        print(f"validation loss {fmt(evaluate_lm(model, chars, cfg, text, source))} nats per character")
        return 0
    prep = load_run(args.run_dir)
    if args.input:
        X, y = read_rows(prep, args.input, "evaluate", need_target=True, no_header=args.no_header)
        result = prep.evaluate(prep.scale(X), y)
        print(f"{args.input} ({len(X)} rows) " + "  ".join(f"{k} {fmt(v)}" for k, v in result.items()))
        return 0
    try:
        data = Data(prep.cfg)
    except CLIError as exc:
        raise CLIError(f"evaluate: the run's test split needs its data, which is not available here ({exc}); "
                       "give a labelled file instead: nerve evaluate RUN_DIR FILE") from None
    if data.features != prep.info["features"]:
        raise CLIError(f"evaluate: the run's data {prep.cfg['data']} has other columns now; give a labelled file")
    result = prep.evaluate(prep.scale(data.Xte), data.yte)
    print("test " + "  ".join(f"{k} {fmt(v)}" for k, v in result.items()))
    return 0


def cmd_predict(args) -> int:
    import nerve
    output = output_path(args.output, "predict")
    lm = _lm_run(args.run_dir)
    if lm is not None:
        from nerve.cli.lm import generate, read_text
        model, chars, cfg = lm
        if args.prompt is None and args.input is None:
            raise CLIError("predict: a language model needs a prompt: --prompt TEXT or a text file")
        prompt = args.prompt if args.prompt is not None else read_text(args.input, "predict")
        text = generate(model, chars, prompt, args.length, args.temperature, args.seed) + "\n"
    else:
        if args.input is None:
            raise CLIError("predict: give the input file (CSV, .npy or .npz)")
        prep = load_run(args.run_dir)
        X, _ = read_rows(prep, args.input, "predict", no_header=args.no_header)
        out = nerve.train.predict(prep.answering_model(), prep.scale(X)).numpy()
        lines = ([prep.classes[i] for i in out.argmax(axis=1)] if prep.classes is not None
                 else [" ".join(f"{v:.6g}" for v in row) for row in out])
        text = "\n".join(lines) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
