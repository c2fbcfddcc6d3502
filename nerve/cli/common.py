"""What the ``nerve`` sub-commands share: options and their defaults, data, models, run directories."""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np


DEFAULTS = {
    "data": "digits", "target": None, "model": "mlp", "hidden": "128,64", "activation": "relu",
    "optimizer": "adam", "lr": 1e-3, "epochs": 30, "batch_size": 32, "dropout": 0.0,
    "weight_decay": 0.0, "seed": 0, "out": None, "verbose": 1, "iters": 2000, "block_size": 64,
    "eval_iters": 200, "rule": "backprop", "adversarial": None, "eps": 0.1, "adv_steps": 10,
}


RULES = ("backprop", "fa", "sign", "dfa")


LM_MODELS = ("char-lstm", "char-gru", "gpt")
#: the tutorial recipes' own defaults where the user gives none (snnTorch tutorial 5: Adam 5e-4, batch 128, 1 epoch)
MODEL_DEFAULTS = {"snn": {"lr": 5e-4, "batch_size": 128, "epochs": 1}}


TOY = ("moons", "circles", "spirals", "xor")



class CLIError(Exception):
    """A problem with the command's input, printed without a traceback."""



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
    if cfg["model"] == "snn":  # snnTorch tutorial 5: 784-1000-10 Leaky, beta 0.95, 25 steps
        from nerve.models.snn import SpikingMLP
        hidden = str(cfg["hidden"])
        num_hidden = 1000 if hidden == DEFAULTS["hidden"] else int(hidden.split(",")[0])
        return SpikingMLP(n_features, num_hidden, n_outputs, beta=0.95, num_steps=25)
    if cfg["model"] != "mlp":
        raise CLIError(f"unknown --model {cfg['model']!r}: choose mlp, cnn, lenet, snn, gan, char-lstm, char-gru "
                       "or gpt")
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



class Prepared:
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
        if cfg["model"] == "snn":  # the tutorial feeds pixels in [0, 1] as the input current
            self.mean, self.std = np.zeros(1, np.float32), np.ones(1, np.float32)
        self.n_features = Xtr.shape[1]
        self.Xtr, self.ytr = self.scale(Xtr), ytr
        self.Xte, self.yte = self.scale(Xte), yte
        self.classes = classes
        n_out = len(classes) if classes is not None else ytr.shape[1]
        self.model = build_model(cfg, self.n_features, n_out)
        self.loss = nn.CrossEntropyLoss() if classes is not None else nn.MSELoss()
        self.metrics = ["accuracy"] if classes is not None else ["mae", "r2"]
        if cfg["model"] == "snn":
            from nerve.snn import functional as SF
            if classes is None:
                raise CLIError("--model snn classifies; the data has a continuous target")
            self.loss, self.metrics = SF.ce_membrane_loss(), [SF.SpikeAccuracy()]

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Standardise with the training statistics; images become (N, 1, side, side)."""
        X = ((X - self.mean) / self.std).astype(np.float32)
        if self.image:
            side = int(round(X.shape[1] ** 0.5))
            X = X.reshape(len(X), 1, side, side)
        return X



def save_weights(run: Path, prep: Prepared, cfg: dict) -> None:
    import nerve
    state = dict(prep.model.state_dict())
    state["preprocess.mean"] = nerve.tensor(prep.mean)
    state["preprocess.std"] = nerve.tensor(prep.std)
    nerve.save(state, run / "model.safetensors",
               metadata={"model_config": prep.model.get_config(), "classes": prep.classes, "cli": cfg})



def plot_history(run: Path, history: dict) -> None:
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



def run_dir_for(cfg: dict) -> Path:
    if cfg["out"]:
        return Path(cfg["out"])
    stem = cfg["data"].split(":")[0] + "-" + cfg["model"] + time.strftime("-%Y%m%d-%H%M%S")
    return Path("runs") / stem



def load_run(run_dir: str) -> Prepared:
    import nerve
    run = Path(run_dir)
    if not (run / "config.json").exists() or not (run / "model.safetensors").exists():
        raise CLIError(f"{run} is not a finished run directory (config.json and model.safetensors needed)")
    cfg = json.loads((run / "config.json").read_text())
    prep = Prepared(cfg)
    try:
        state = nerve.load(run / "model.safetensors")
        prep.mean = state.pop("preprocess.mean").numpy()
        prep.std = state.pop("preprocess.std").numpy()
        prep.model.load_state_dict(state)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise CLIError(f"cannot use the weights in {run / 'model.safetensors'}: {exc}")
    return prep



def has_column(path: str, name: str | None) -> bool:
    if not name:
        return False
    with open(path, newline="") as f:
        return name in next(csv.reader(f), [])



def load_toml(path: str) -> dict:
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
