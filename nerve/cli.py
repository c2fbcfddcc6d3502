"""The ``nerve`` command: ``nerve train``, ``nerve evaluate RUN_DIR``, ``nerve predict RUN_DIR INPUT``.

A run directory holds config.json (every option, so runs can be evaluated and resumed), model.safetensors
(the weights with the model's config and the input scaling), checkpoint.safetensors (the full training
state), history.csv and, with matplotlib installed, curve.png.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DEFAULTS = {
    "data": "digits", "target": None, "model": "mlp", "hidden": "128,64", "activation": "relu",
    "optimizer": "adam", "lr": 1e-3, "epochs": 30, "batch_size": 32, "dropout": 0.0,
    "weight_decay": 0.0, "seed": 0, "out": None, "verbose": 1, "iters": 2000, "block_size": 64,
    "eval_iters": 200, "rule": "backprop",
}
RULES = ("backprop", "fa", "sign", "dfa")
LM_MODELS = ("char-lstm", "char-gru", "gpt")
TOY = ("moons", "circles", "spirals", "xor")


class CLIError(Exception):
    """A problem with the command's input, printed without a traceback."""


# --- data -------------------------------------------------------------------------------------------
def _split(X, y, seed: int, classification: bool):
    from sklearn.model_selection import train_test_split
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=seed,
                                          stratify=y if classification else None)
    return Xtr, ytr, Xte, yte


def read_csv(path: str, target: str | None):
    """Numeric feature columns and (if ``target`` is given) the target column of a CSV file with a header."""
    if not os.path.exists(path):
        raise CLIError(f"csv: no file {path!r}")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise CLIError(f"csv: {path} is empty")
    header, body = rows[0], rows[1:]
    if not body:
        raise CLIError(f"csv: {path} has a header but no rows")
    if target is not None and target not in header:
        raise CLIError(f"csv: target column {target!r} is not in {path}; its columns are {header}")
    features = [c for c in header if c != target]
    X = np.empty((len(body), len(features)), dtype=np.float32)
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise CLIError(f"csv: {path} line {r + 2} has {len(row)} fields, the header has {len(header)}")
        values = dict(zip(header, row))
        for c, name in enumerate(features):
            try:
                X[r, c] = float(values[name])
            except ValueError:
                raise CLIError(f"csv: {path} line {r + 2}, column {name!r}: {values[name]!r} is not a number "
                               "(encode categorical features first, e.g. with scikit-learn's OneHotEncoder)")
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise CLIError(f"csv: {path} line {r + 2}, column {features[c]!r} is NaN or infinite "
                       f"({int(bad.sum())} such values); impute them first (scikit-learn's SimpleImputer)")
    y = None if target is None else np.array([dict(zip(header, row))[target] for row in body])
    return X, y, features


def _csv_target(y: np.ndarray):
    """Class indices for a categorical target, else float values (regression)."""
    try:
        values = y.astype(np.float64)
    except ValueError:
        classes, idx = np.unique(y, return_inverse=True)
        return idx.astype(np.int64), [str(c) for c in classes]
    if np.all(values == np.round(values)) and len(np.unique(values)) <= 20:
        classes, idx = np.unique(values, return_inverse=True)
        return idx.astype(np.int64), [str(int(c)) for c in classes]
    return values.astype(np.float32).reshape(-1, 1), None


def load_data(cfg: dict):
    """Train/test arrays for ``cfg['data']`` and what they are: (Xtr, ytr, Xte, yte, classes)."""
    from nerve.data import datasets
    name, seed = cfg["data"], cfg["seed"]
    if name == "digits":
        X, y = datasets.load_digits()
        return (*_split(X, y, seed, True), [str(i) for i in range(10)])
    if name in ("mnist", "fashion-mnist"):
        load = datasets.load_mnist if name == "mnist" else datasets.load_fashion_mnist
        Xtr, ytr = load(train=True, flatten=True)
        Xte, yte = load(train=False, flatten=True)
        return Xtr, ytr, Xte, yte, [str(i) for i in range(10)]
    if name in TOY:
        X, y = getattr(datasets, f"make_{name}")(n_samples=2000, generator=seed)
        return (*_split(X, y, seed, True), [str(c) for c in np.unique(y)])
    if name.startswith("csv:"):
        if not cfg.get("target"):
            raise CLIError("--data csv:PATH needs --target COLUMN")
        X, y, _ = read_csv(name[4:], cfg["target"])
        y, classes = _csv_target(y)
        return (*_split(X, y, seed, classes is not None), classes)
    raise CLIError(f"unknown --data {name!r}: choose digits, mnist, fashion-mnist, {', '.join(TOY)} or csv:PATH")


# --- model and training ----------------------------------------------------------------------------------
IMAGE_MODELS = ("cnn", "lenet")


def build_model(cfg: dict, n_features: int, n_outputs: int):
    """The network ``--model`` names, for inputs of ``n_features`` values (square images for CNNs)."""
    from nerve.models import MLP, LeNet5, SmallCNN
    if cfg["model"] in IMAGE_MODELS:
        side = int(round(n_features ** 0.5))
        if side * side != n_features:
            raise CLIError(f"--model {cfg['model']} needs square images; --data {cfg['data']} has "
                           f"{n_features} features per sample")
        if cfg["model"] == "lenet":
            if side != 28:
                raise CLIError(f"--model lenet takes 28x28 images (mnist, fashion-mnist), not {side}x{side}")
            return LeNet5(1, n_outputs)
        return SmallCNN(1, n_outputs, image_size=side)
    if cfg["model"] != "mlp":
        raise CLIError(f"unknown --model {cfg['model']!r}: choose mlp, cnn, lenet, char-lstm, char-gru or gpt")
    try:
        hidden = [int(h) for h in str(cfg["hidden"]).split(",") if h.strip()]
    except ValueError:
        raise CLIError(f"--hidden takes comma-separated layer widths like 128,64, got {cfg['hidden']!r}")
    try:
        return MLP(n_features, hidden, n_outputs, activation=cfg["activation"], dropout=cfg["dropout"])
    except ValueError as exc:
        raise CLIError(str(exc))


def build_optimizer(cfg: dict, model):
    from nerve import optim
    choices = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
               "adagrad": optim.Adagrad}
    if cfg["optimizer"] not in choices:
        raise CLIError(f"unknown --optimizer {cfg['optimizer']!r}: choose from {sorted(choices)}")
    kwargs = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cfg["optimizer"] == "sgd":
        kwargs["momentum"] = 0.9
    return choices[cfg["optimizer"]](model.parameters(), **kwargs)


class _Prepared:
    """Data scaled with the training set's statistics, plus the model, loss and metrics for it."""

    def __init__(self, cfg: dict) -> None:
        import nerve
        from nerve import nn
        nerve.manual_seed(cfg["seed"])
        Xtr, ytr, Xte, yte, classes = load_data(cfg)
        self.image = cfg["model"] in IMAGE_MODELS
        # NOTE: images are scaled by one mean and std (as torchvision's Normalize does); tabular data per
        # feature, where a feature constant in training (digits' blank border pixels) is left unscaled.
        axis = None if self.image else 0
        self.mean = np.atleast_1d(Xtr.mean(axis=axis)).astype(np.float32)
        std = np.atleast_1d(Xtr.std(axis=axis))
        self.std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        self.n_features = Xtr.shape[1]
        self.Xtr, self.ytr = self.scale(Xtr), ytr
        self.Xte, self.yte = self.scale(Xte), yte
        self.classes = classes
        n_out = len(classes) if classes is not None else ytr.shape[1]
        self.model = build_model(cfg, self.n_features, n_out)
        self.loss = nn.CrossEntropyLoss() if classes is not None else nn.MSELoss()
        self.metrics = ["accuracy"] if classes is not None else ["mae", "r2"]

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Standardise with the training statistics; images become (N, 1, side, side)."""
        X = ((X - self.mean) / self.std).astype(np.float32)
        if self.image:
            side = int(round(X.shape[1] ** 0.5))
            X = X.reshape(len(X), 1, side, side)
        return X


def _save_weights(run: Path, prep: _Prepared, cfg: dict) -> None:
    import nerve
    state = dict(prep.model.state_dict())
    state["preprocess.mean"] = nerve.tensor(prep.mean)
    state["preprocess.std"] = nerve.tensor(prep.std)
    nerve.save(state, run / "model.safetensors",
               metadata={"model_config": prep.model.get_config(), "classes": prep.classes, "cli": cfg})


def _plot(run: Path, history: dict) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    keys = [k for k in history if not k.startswith("val_") and k != "lr"]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(range(1, len(history[key]) + 1), history[key], label=key)
        if "val_" + key in history:
            ax.plot(range(1, len(history["val_" + key]) + 1), history["val_" + key], label="val_" + key)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(run / "curve.png", dpi=100)
    plt.close(fig)


def _run_dir(cfg: dict) -> Path:
    if cfg["out"]:
        return Path(cfg["out"])
    stem = cfg["data"].split(":")[0] + "-" + cfg["model"] + time.strftime("-%Y%m%d-%H%M%S")
    return Path("runs") / stem


def _lm_text(cfg: dict) -> str:
    from nerve.data.datasets import load_shakespeare
    if cfg["data"] == "shakespeare":
        return load_shakespeare()
    if cfg["data"].startswith("text:"):
        path = cfg["data"][5:]
        if not os.path.exists(path):
            raise CLIError(f"text: no file {path!r}")
        return Path(path).read_text(encoding="utf-8")
    raise CLIError(f"--model {cfg['model']} trains on text: --data shakespeare or text:PATH, not {cfg['data']!r}")


def cmd_train_lm(cfg: dict) -> int:
    """A character-level language model (CharRNN or GPT) trained on random windows of a text."""
    import nerve
    from nerve.data.text import CharVocab, random_windows, split_text
    from nerve.models import GPT, CharRNN
    from nerve.models.gpt import warmup_cosine
    nerve.manual_seed(cfg["seed"])
    text = _lm_text(cfg)
    vocab = CharVocab(text)
    train_ids, val_ids = split_text(vocab.encode(text), 0.1)
    gpt = cfg["model"] == "gpt"
    block = cfg["block_size"]
    batch = cfg["batch_size"] if cfg["batch_size"] != DEFAULTS["batch_size"] or not gpt else 12
    if gpt:  # nanoGPT's shakespeare_char CPU configuration
        model = GPT(vocab.size, block_size=block, n_layer=4, n_head=4, n_embd=128, dropout=cfg["dropout"])
        optimizer = model.configure_optimizers(0.1, cfg["lr"], (0.9, 0.99), decay_embeddings=True)
    else:
        model = CharRNN(vocab.size, 64, 256, cell=cfg["model"][5:], chars="".join(vocab.chars))
        optimizer = build_optimizer(cfg, model)
    run = _run_dir(cfg)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(cfg, indent=2))
    rng = np.random.default_rng(cfg["seed"])
    print(f"nerve train: {cfg['data']} ({len(text):,} characters, vocabulary {vocab.size}), {cfg['model']}, "
          f"{cfg['iters']} iterations of batch {batch} x {block}, run {run}")

    def val_loss(iters: int = 20) -> float:
        model.eval()
        with nerve.no_grad():
            losses = [model.loss(model(x), y).item() for x, y in
                      (random_windows(val_ids, block, batch, rng) for _ in range(iters))]
        model.train()
        return float(np.mean(losses))

    start = time.perf_counter()
    try:
        for it in range(cfg["iters"]):
            if gpt:
                for group in optimizer.param_groups:
                    group["lr"] = warmup_cosine(it, cfg["lr"], 100, cfg["iters"], cfg["lr"] / 10)
            x, y = random_windows(train_ids, block, batch, rng)
            loss = model.loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            nerve.optim.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if cfg["verbose"] and (it % 250 == 0 or it == cfg["iters"] - 1):
                print(f"iter {it}: loss {loss.item():.4f}, val loss {val_loss():.4f}, "
                      f"{time.perf_counter() - start:.0f} s", flush=True)
    except KeyboardInterrupt:
        print(f"\ninterrupted at iteration {it}; saving the model as it is", file=sys.stderr)
    nerve.save(model, run / "model.safetensors", metadata={"chars": "".join(vocab.chars), "cli": cfg})
    print(f"validation loss {val_loss(cfg['eval_iters']):.4f} nats per character")
    prompt = vocab.decode(val_ids[:1])
    sample = (model.generate(nerve.tensor(val_ids[None, :1]), 300, temperature=0.8, top_k=20) if gpt
              else None)
    text_out = (vocab.decode(sample.numpy()[0]) if gpt else
                model.generate(prompt, 300, temperature=0.8, top_k=20))
    print("sample:\n" + text_out)
    print(f"saved {run / 'model.safetensors'}")
    return 0


def build_rule(cfg: dict, model):
    """The learning rule of --rule (feedback matrices seeded by --seed)."""
    from nerve import rules

    name = cfg.get("rule", "backprop")
    if name not in RULES:
        raise CLIError(f"unknown --rule {name!r}: choose from {list(RULES)}")
    try:
        if name == "backprop":
            return rules.Backprop(model)
        if name == "dfa":
            return rules.DirectFeedbackAlignment(model, seed=cfg["seed"])
        return rules.FeedbackAlignment(model, feedback="random" if name == "fa" else "sign", seed=cfg["seed"])
    except ValueError as exc:
        raise CLIError(f"--rule {name}: {exc}") from None


def cmd_train(cfg: dict, resume_dir: str | None) -> int:
    import nerve
    from nerve.train import AlignmentLogger, CSVLogger, fit
    if resume_dir is not None:
        run = Path(resume_dir)
        if not (run / "config.json").exists():
            raise CLIError(f"--resume: {run} has no config.json; is it a run directory of 'nerve train'?")
        cfg = json.loads((run / "config.json").read_text())
        if not (run / "checkpoint.safetensors").exists():
            raise CLIError(f"--resume: {run} has no checkpoint.safetensors to resume from")
    else:
        run = _run_dir(cfg)
    prep = _Prepared(cfg)
    optimizer = build_optimizer(cfg, prep.model)
    rule = build_rule(cfg, prep.model)
    callbacks = [CSVLogger(run / "history.csv")]
    if cfg.get("rule", "backprop") != "backprop":  # the angles to backprop's updates, per layer and epoch
        callbacks.insert(0, AlignmentLogger(rule, prep.Xtr[:256], prep.ytr[:256], prep.loss))
    if resume_dir is None:  # only once the data and model are known to be good
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(cfg, indent=2))
    print(f"nerve train: {cfg['data']} ({len(prep.Xtr)} training, {len(prep.Xte)} test samples), "
          f"{cfg['model']} {prep.model.get_config()}, {cfg['optimizer']} lr {cfg['lr']}, "
          f"rule {cfg.get('rule', 'backprop')}, run {run}")
    try:
        history = fit(prep.model, (prep.Xtr, prep.ytr), loss=prep.loss, optimizer=optimizer,
                      epochs=cfg["epochs"], batch_size=cfg["batch_size"], validation_split=0.1,
                      metrics=prep.metrics, callbacks=callbacks, rule=rule,
                      verbose=cfg["verbose"], checkpoint=run / "checkpoint.safetensors",
                      resume=resume_dir is not None)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the checkpoint in {run} is whole; continue with: nerve train --resume {run}",
              file=sys.stderr)
        return 130
    _save_weights(run, prep, cfg)
    _plot(run, history.history)
    result = nerve.train.evaluate(prep.model, (prep.Xte, prep.yte), loss=prep.loss, metrics=prep.metrics)
    print("test " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    print(f"saved {run / 'model.safetensors'}")
    return 0


def _load_run(run_dir: str) -> _Prepared:
    import nerve
    run = Path(run_dir)
    if not (run / "config.json").exists() or not (run / "model.safetensors").exists():
        raise CLIError(f"{run} is not a finished run directory (config.json and model.safetensors needed)")
    cfg = json.loads((run / "config.json").read_text())
    prep = _Prepared(cfg)
    try:
        state = nerve.load(run / "model.safetensors")
        prep.mean = state.pop("preprocess.mean").numpy()
        prep.std = state.pop("preprocess.std").numpy()
        prep.model.load_state_dict(state)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise CLIError(f"cannot use the weights in {run / 'model.safetensors'}: {exc}")
    return prep


def cmd_evaluate(run_dir: str) -> int:
    import nerve
    prep = _load_run(run_dir)
    result = nerve.train.evaluate(prep.model, (prep.Xte, prep.yte), loss=prep.loss, metrics=prep.metrics)
    print("test " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return 0


def cmd_predict(run_dir: str, input_path: str, output: str | None) -> int:
    import nerve
    prep = _load_run(run_dir)
    cfg = json.loads((Path(run_dir) / "config.json").read_text())
    if input_path.endswith(".npy"):
        X = np.load(input_path, allow_pickle=False).astype(np.float32)
        X = X.reshape(len(X), -1)
    else:
        X, _, _ = read_csv(input_path, cfg.get("target") if _has_column(input_path, cfg.get("target")) else None)
    n_features = prep.n_features
    if X.shape[1] != n_features:
        raise CLIError(f"predict: {input_path} has {X.shape[1]} features per row, the model takes {n_features}")
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise CLIError(f"predict: {input_path} row {r}, feature {c} is NaN or infinite")
    out = nerve.train.predict(prep.model, prep.scale(X)).numpy()
    lines = ([prep.classes[i] for i in out.argmax(axis=1)] if prep.classes is not None
             else [" ".join(f"{v:.6g}" for v in row) for row in out])
    text = "\n".join(lines) + "\n"
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _has_column(path: str, name: str | None) -> bool:
    if not name:
        return False
    with open(path, newline="") as f:
        return name in next(csv.reader(f), [])


# --- argument parsing -------------------------------------------------------------------------------
def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as f:
        data = tomllib.load(f)
    data = {k.replace("-", "_"): v for k, v in data.get("train", data).items()}
    unknown = set(data) - set(DEFAULTS)
    if unknown:
        raise CLIError(f"--config {path}: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    if "hidden" in data and isinstance(data["hidden"], list):
        data["hidden"] = ",".join(str(h) for h in data["hidden"])
    return data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nerve", description="nerve: train and study neural networks")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a network (default: an MLP on the embedded digits)")
    train.add_argument("--data", help="digits, mnist, fashion-mnist, moons, circles, spirals, xor, csv:PATH; "
                       "shakespeare or text:PATH for language models")
    train.add_argument("--target", help="the target column of --data csv:PATH")
    train.add_argument("--model", help="mlp (default), cnn (conv32-conv64-pool-fc128), lenet (28x28 images); "
                       "char-lstm, char-gru or gpt with --data shakespeare or text:PATH")
    train.add_argument("--iters", type=int, help="training iterations of a language model (default 2000)")
    train.add_argument("--block-size", type=int, dest="block_size", help="context length of a language model")
    train.add_argument("--eval-iters", type=int, dest="eval_iters",
                       help="validation batches of a language model's closing estimate (default 200)")
    train.add_argument("--hidden", help="hidden layer widths, e.g. 128,64")
    train.add_argument("--activation", help="relu, tanh, sigmoid, gelu, silu, elu, leaky_relu, softplus")
    train.add_argument("--optimizer", help="adam, adamw, sgd, rmsprop, adagrad")
    train.add_argument("--rule", help="the learning rule: backprop (default), fa (feedback alignment), sign (sign "
                       "symmetry), dfa (direct feedback alignment); MLP and CNN models")
    train.add_argument("--lr", type=float)
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int, dest="batch_size")
    train.add_argument("--dropout", type=float)
    train.add_argument("--weight-decay", type=float, dest="weight_decay")
    train.add_argument("--seed", type=int)
    train.add_argument("--verbose", type=int, choices=(0, 1, 2))
    train.add_argument("--out", help="run directory (default runs/DATA-MODEL-TIME)")
    train.add_argument("--config", help="a TOML file of these options (command-line options win)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    ev = sub.add_parser("evaluate", help="test metrics of a finished run")
    ev.add_argument("run_dir")
    pr = sub.add_parser("predict", help="predictions of a finished run for a CSV or .npy file")
    pr.add_argument("run_dir")
    pr.add_argument("input")
    pr.add_argument("--output", help="write predictions here instead of standard output")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            cfg = dict(DEFAULTS)
            if args.config:
                cfg.update(_load_toml(args.config))
            cfg.update({k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None})
            if cfg["model"] in LM_MODELS:
                if cfg["rule"] != "backprop":
                    raise CLIError(f"--rule {cfg['rule']}: learning rules train MLP and CNN models, not "
                                   f"{cfg['model']}")
                return cmd_train_lm(cfg)
            return cmd_train(cfg, args.resume)
        if args.command == "evaluate":
            return cmd_evaluate(args.run_dir)
        return cmd_predict(args.run_dir, args.input, args.output)
    except CLIError as exc:
        print(f"nerve {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
