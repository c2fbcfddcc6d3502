"""The tools' commands: adversarial training and ``nerve attack`` (nerve.robust), ``nerve explain``
(nerve.explain), a DCGAN run (``nerve train --model gan``, nerve.gan); ``nerve pinn`` lives in nerve.pinn.command."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from nerve.cli.common import DEFAULTS, CLIError, check_out, make_run_dir, run_config, run_dir_for
from nerve.cli.data import Data, Prepared, load_run

IMAGE_DATA = ("digits", "mnist", "fashion-mnist")


def build_adversarial(cfg: dict, prep: Prepared):
    """The train_step of --adversarial (nerve.robust.AdversarialStep), or None; eps on the unscaled inputs."""
    if not cfg.get("adversarial"):
        return None
    from nerve.robust import METHODS, AdversarialStep
    if cfg["adversarial"] not in METHODS:
        raise CLIError(f"unknown --adversarial {cfg['adversarial']!r}: choose from {list(METHODS)}")
    if cfg.get("rule", "backprop") != "backprop" or prep.classes is None:
        raise CLIError("--adversarial trains classifiers with backprop (no --rule, no regression data)")
    try:
        return AdversarialStep(cfg["adversarial"], eps=cfg["eps"], steps=cfg["adv_steps"],
                               bounds=(0.0, 1.0) if cfg["data"] in IMAGE_DATA else None,
                               normalization=(prep.mean, prep.std))
    except ValueError as exc:
        raise CLIError(f"--adversarial: {exc}") from None


def cmd_attack(run_dir: str, names: str, eps: str, limit: int | None) -> int:
    """The robust-accuracy table of a finished classification run (nerve.robust.robust_accuracy)."""
    from nerve.robust import make_attack, robust_accuracy
    prep = load_run(run_dir)
    cfg = prep.cfg
    if prep.classes is None:
        raise CLIError("attack: the run is a regression; attacks need a classifier")
    data = Data(cfg)
    prep.Xte, prep.yte = prep.scale(data.Xte), data.yte
    try:
        radii = [float(e) for e in eps.split(",")]
    except ValueError:
        raise CLIError(f"attack: --eps takes comma-separated numbers, got {eps!r}") from None
    shape = (1, -1) + (1,) * (prep.Xte.ndim - 2)
    X = prep.Xte * prep.std.reshape(shape) + prep.mean.reshape(shape)  # back to the unscaled inputs
    bounds = (0.0, 1.0) if cfg["data"] in IMAGE_DATA else None
    X, y = (np.clip(X, 0.0, 1.0) if bounds else X)[:limit], prep.yte[:limit]
    try:
        attacks = [make_attack(n.strip(), prep.model, max(radii), bounds=bounds)
                   .set_normalization_used(prep.mean, prep.std) for n in names.split(",")]
        report = robust_accuracy(prep.model, (X, y), attacks, eps=radii)
    except ValueError as exc:
        raise CLIError(f"attack: {exc}") from None
    print(report.table())
    return 0


def cmd_explain(run_dir: str, input_path: str, method: str, output: str | None, target: int | None) -> int:
    """Attribution maps of a finished run for the rows of a CSV or .npy file, as one PNG."""
    from nerve.explain import explain_to_png
    from nerve.cli.runs import read_rows
    prep = load_run(run_dir)
    X, _ = read_rows(prep, input_path, "explain")
    path = Path(output) if output else Path(run_dir) / f"explain-{method}.png"
    explain_to_png(prep.model, prep.scale(X), path, method, target, class_names=prep.classes)
    print(f"wrote {path}")
    return 0


def run_model(run_dir: str) -> str | None:
    """The --model of an existing run directory (for --resume), or None."""
    path = Path(run_dir) / "config.json"
    return run_config(Path(run_dir)).get("model") if path.exists() else None


def cmd_train_gan(cfg: dict, resume_dir: str | None, overwrite: bool = False) -> int:
    """A DCGAN on 28x28 images (--data mnist or fashion-mnist); a sample grid per epoch goes into the run directory."""
    import nerve
    from nerve.gan import train_dcgan
    if resume_dir is not None:
        run = Path(resume_dir)
        if not (run / "config.json").exists() or not (run / "checkpoint.safetensors").exists():
            raise CLIError(f"--resume: {run} has no config.json and checkpoint.safetensors of a 'nerve train' run")
        cfg = run_config(run)
    else:
        if cfg["data"] not in ("mnist", "fashion-mnist"):
            raise CLIError(f"--model gan trains a DCGAN on 28x28 images: --data mnist or fashion-mnist, not "
                           f"{cfg['data']!r}")
        run = run_dir_for(cfg)
        replace = check_out(run, overwrite)
    nerve.manual_seed(cfg["seed"])
    images = Data(cfg).Xtr
    if resume_dir is None:
        make_run_dir(run, cfg, replace)
    lr = 2e-4 if cfg["lr"] == DEFAULTS["lr"] else cfg["lr"]  # DCGAN's rate unless --lr says otherwise
    print(f"nerve train: {cfg['data']} ({len(images)} images), DCGAN (non-saturating loss, Adam lr {lr}, "
          f"EMA 0.999 of G), {cfg['epochs']} epochs of batch {cfg['batch_size']}, run {run}")
    try:
        train_dcgan(images, run, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=lr, verbose=cfg["verbose"],
                    resume=resume_dir is not None)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the checkpoint in {run} is whole; continue with: nerve train --resume {run}",
              file=sys.stderr)
        return 130
    print(f"saved {run / 'generator.safetensors'}; samples: {run}/samples_epoch_*.png, samples.png, interpolation.png")
    return 0
