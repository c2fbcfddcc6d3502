"""Data, models and the run file of ``nerve train`` for classifiers and regressors: the split, the input and
target scaling, the model, and ``model.safetensors`` holding all that prediction needs (feature names and
order, categories, scaling, label names), so a run directory works without its training data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nerve import nn
from nerve.cli.common import (
    DEFAULTS, IMAGE_MODELS, TOY, CLIError, hidden_widths, run_config,
)
from nerve.cli.table import check_missing, column_spec, encode, encoded_names, read_table, target_values

RUN_KEY = "nerve.run"
TEST_SIZE, VAL_SPLIT = 0.2, 0.1


def _split(X, y, seed: int, classification: bool):
    from sklearn.model_selection import train_test_split
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=TEST_SIZE, random_state=seed,
                                          stratify=y if classification else None)
    return Xtr, ytr, Xte, yte


def check_rows(path: str, y: np.ndarray, classes: list | None) -> None:
    """Enough rows (and rows per class) for the test split of 20% and the validation split of 10%."""
    n = len(y)
    if n < 10:
        raise CLIError(f"csv: {path} has {n} data row{'s' * (n != 1)}; training needs at least 10 (20% are held "
                       "out for the test and 10% of the rest for validation); add rows")
    if classes is None:
        return
    if len(classes) < 2:
        raise CLIError(f"csv: {path}: the target has one class ({classes[0]!r}); a classifier needs at least two. "
                       "Is --target the right column?")
    counts = np.bincount(y, minlength=len(classes))
    rare = [classes[k] for k in np.flatnonzero(counts < 2)]
    if rare:
        raise CLIError(f"csv: {path}: the classes {rare} have a single row; the stratified test split needs at "
                       "least 2 rows per class: add rows or merge rare classes")
    n_test = int(np.ceil(TEST_SIZE * n))
    if n_test < len(classes) or n - n_test < len(classes):
        raise CLIError(f"csv: {path}: {n} rows are too few for {len(classes)} classes (the test split of {n_test} "
                       "rows needs one per class); add rows or merge classes")


class Data:
    """Train/test arrays of ``--data`` and what they are (feature names, text categories, label names)."""

    def __init__(self, cfg: dict) -> None:
        from nerve.data import datasets
        name, seed = cfg["data"], cfg["seed"]
        self.spec = self.columns = None
        if name == "digits":
            X, y = datasets.load_digits()
            self.Xtr, self.ytr, self.Xte, self.yte = _split(X, y, seed, True)
            self.classes = [str(i) for i in range(10)]
        elif name in ("mnist", "fashion-mnist"):
            load = datasets.load_mnist if name == "mnist" else datasets.load_fashion_mnist
            try:
                self.Xtr, self.ytr = load(train=True, flatten=True)
                self.Xte, self.yte = load(train=False, flatten=True)
            except (OSError, RuntimeError, ValueError) as exc:
                raise CLIError(f"--data {name}: {' '.join(str(exc).split())}") from None
            self.classes = [str(i) for i in range(10)]
        elif name in TOY:
            X, y = getattr(datasets, f"make_{name}")(n_samples=2000, generator=seed)
            self.Xtr, self.ytr, self.Xte, self.yte = _split(X, y, seed, True)
            self.classes = [str(c) for c in np.unique(y)]
        elif name.startswith("csv:"):
            self._csv(cfg)
        else:
            raise CLIError(f"unknown --data {name!r}: choose digits, mnist, fashion-mnist, {', '.join(TOY)} or "
                           "csv:PATH")
        self.features = (encoded_names(self.spec) if self.spec is not None
                         else [f"x{j}" for j in range(self.Xtr.shape[1])])

    def _csv(self, cfg: dict) -> None:
        path, target = cfg["data"][4:], cfg["target"]
        if not target:
            raise CLIError("--data csv:PATH needs --target COLUMN")
        table = read_table(path, cfg["no_header"])
        if target not in table.names:
            hint = " (without a header, columns are named by position: 1, 2, ...)" if not table.header else ""
            raise CLIError(f"csv: target column {target!r} is not in {path}; its columns are {table.names}{hint}")
        self.columns = table.names
        check_missing(table, table.names)
        self.spec = column_spec(table, [c for c in table.names if c != target])
        if not self.spec:
            raise CLIError(f"csv: {path} has only the target column {target!r}; there are no features")
        X = encode(table, self.spec)
        y, self.classes = target_values(table, target)
        check_rows(path, y if self.classes is not None else y[:, 0], self.classes)
        self.Xtr, self.ytr, self.Xte, self.yte = _split(X, y, cfg["seed"], self.classes is not None)


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
        try:
            return SmallCNN(1, n_outputs, image_size=side)
        except ValueError as exc:
            raise CLIError(f"--model cnn: {exc}") from None
    if cfg["model"] == "snn":  # snnTorch tutorial 5: 784-1000-10 Leaky, beta 0.95, 25 steps
        from nerve.models.snn import SpikingMLP
        hidden = str(cfg["hidden"])
        num_hidden = 1000 if hidden == DEFAULTS["hidden"] else hidden_widths(hidden)[0]
        return SpikingMLP(n_features, num_hidden, n_outputs, beta=0.95, num_steps=25)
    if cfg["model"] != "mlp":
        raise CLIError(f"unknown --model {cfg['model']!r}: choose mlp, cnn, lenet, snn, gan, char-lstm, char-gru "
                       "or gpt")
    try:
        return MLP(n_features, hidden_widths(cfg["hidden"]), n_outputs, activation=cfg["activation"],
                   dropout=cfg["dropout"])
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def build_optimizer(cfg: dict, model):
    from nerve import optim
    choices = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
               "adagrad": optim.Adagrad}
    if cfg["optimizer"] not in choices:
        raise CLIError(f"unknown --optimizer {cfg['optimizer']!r}: choose from {sorted(choices)}")
    kwargs = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cfg["optimizer"] == "sgd":
        kwargs["momentum"] = 0.9
    # frozen parameters (--freeze) stay out: nerve's optimisers refuse parameters that do not require grad
    return choices[cfg["optimizer"]]([p for p in model.parameters() if p.requires_grad], **kwargs)


class Prepared:
    """A classifier's or regressor's model with what turns raw rows into its inputs and its outputs into
    answers: feature names and categories, input scaling, label names or the target's scaling."""

    def __init__(self, cfg: dict, info: dict, mean: np.ndarray, std: np.ndarray) -> None:
        self.cfg, self.info, self.mean, self.std = cfg, info, mean, std
        self.classes = info["classes"]
        self.image = cfg["model"] in IMAGE_MODELS
        self.n_features = len(info["features"])
        n_out = len(self.classes) if self.classes is not None else 1
        self.model = build_model(cfg, self.n_features, n_out)
        self.loss = nn.CrossEntropyLoss() if self.classes is not None else nn.MSELoss()
        self.metrics = ["accuracy"] if self.classes is not None else ["mae", "r2"]
        if cfg["model"] == "snn":
            from nerve.snn import functional as SF
            if self.classes is None:
                raise CLIError("--model snn classifies; the data has a continuous target")
            self.loss, self.metrics = SF.ce_membrane_loss(), [SF.SpikeAccuracy()]
        self.Xtr = self.ytr = self.Xte = self.yte = None

    @classmethod
    def from_data(cls, cfg: dict) -> "Prepared":
        """Load ``--data``, fit the scaling on the training rows, build the model (seeded)."""
        import nerve
        nerve.manual_seed(cfg["seed"])
        data = Data(cfg)
        image = cfg["model"] in IMAGE_MODELS
        # NOTE: images are scaled by one mean and std (as torchvision's Normalize does); tabular data per
        # feature, where a feature constant in training (digits' blank border pixels) is left unscaled.
        mean = np.atleast_1d(data.Xtr.mean(axis=None if image else 0)).astype(np.float32)
        std = np.atleast_1d(data.Xtr.std(axis=None if image else 0))
        std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        if cfg["model"] == "snn":  # the tutorial feeds pixels in [0, 1] as the input current
            mean, std = np.zeros(1, np.float32), np.ones(1, np.float32)
        # NOTE: built-in data sets name their features x0, x1, ... and the target "label" (for CSV input files)
        target = cfg["target"] if data.columns is not None else "label"
        info = {"kind": "classifier" if data.classes is not None else "regressor", "features": data.features,
                "spec": data.spec, "columns": data.columns or [*data.features, target], "target": target,
                "classes": data.classes,
                "target_mean": None, "target_std": None}
        if data.classes is None:  # regression: train on the standardised target, report in its own units
            info["target_mean"] = float(data.ytr.mean())
            info["target_std"] = float(data.ytr.std()) or 1.0
        prep = cls(cfg, info, mean, std)
        prep.Xtr, prep.ytr = prep.scale(data.Xtr), prep.scale_target(data.ytr)
        prep.Xte, prep.yte = prep.scale(data.Xte), data.yte
        return prep

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Standardise with the training statistics; images become (N, 1, side, side)."""
        X = ((X - self.mean) / self.std).astype(np.float32)
        if self.image:
            side = int(round(X.shape[1] ** 0.5))
            X = X.reshape(len(X), 1, side, side)
        return X

    def scale_target(self, y: np.ndarray) -> np.ndarray:
        if self.info["target_mean"] is None:
            return y
        return ((y - self.info["target_mean"]) / self.info["target_std"]).astype(np.float32)

    def answering_model(self):
        """The model whose outputs are answers: class scores (spike counts for an SNN), or the target in its
        own units for a regression."""
        model = self.model
        if self.cfg["model"] == "snn":
            from nerve.models.snn import SpikeCount
            return SpikeCount(model)
        if self.info["target_mean"] is not None:
            return Unscaled(model, self.info["target_mean"], self.info["target_std"])
        return model

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> dict:
        """Loss and metrics of scaled inputs ``X`` against targets ``y`` (a regression's in the target's units)."""
        import nerve
        model, loss = self.model, self.loss
        if self.info["target_mean"] is not None:
            model = self.answering_model()
        return nerve.train.evaluate(model, (X, y), loss=loss, metrics=self.metrics)

    def save(self, run: Path) -> None:
        import nerve
        state = dict(self.model.state_dict())
        state["preprocess.mean"] = nerve.tensor(self.mean)
        state["preprocess.std"] = nerve.tensor(self.std)
        nerve.save(state, run / "model.safetensors",
                   metadata={"model_config": self.model.get_config(), "classes": self.classes, "cli": self.cfg,
                             RUN_KEY: self.info})


class Unscaled(nn.Module):
    """A regressor's output in the target's own units: ``model(x) * std + mean``."""

    def __init__(self, model, mean: float, std: float) -> None:
        super().__init__()
        self.model, self.mean, self.std = model, mean, std

    def forward(self, x):
        return self.model(x) * self.std + self.mean


def load_run(run_dir: str) -> Prepared:
    """A finished run's model and everything it needs to answer, from the run directory alone."""
    import nerve
    from nerve.io import CorruptFileError
    run = Path(run_dir)
    if not run.is_dir():
        raise CLIError(f"{run} is not a directory; give a run directory of 'nerve train'")
    cfg = run_config(run)
    path = run / "model.safetensors"
    if not path.exists():
        hint = (f"; continue it with: nerve train --resume {run}" if (run / "checkpoint.safetensors").exists()
                else "")
        raise CLIError(f"{run} has no model.safetensors: the run did not finish{hint}")
    try:
        meta = nerve.io.load_metadata(path)
        state = nerve.load(path)
    except (CorruptFileError, OSError) as exc:
        raise CLIError(f"cannot use the weights in {path}: {exc}") from None
    if RUN_KEY not in meta:
        raise CLIError(f"{path} was written by an older nerve without the run's feature names and scaling; "
                       "train the run again")
    try:
        info = json.loads(meta[RUN_KEY])
        prep = Prepared(cfg, info, state.pop("preprocess.mean").numpy(), state.pop("preprocess.std").numpy())
        prep.model.load_state_dict(state)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CLIError(f"cannot use the weights in {path}: {exc}") from None
    return prep

