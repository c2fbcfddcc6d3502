"""``nerve train``: a classifier or regressor on a data set (with a learning rule, early stopping on val_loss
by default), or a character-level language model; ``--resume`` continues a run from its checkpoint."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nerve.cli.common import (
    RESUME_SAFE, RULES, CLIError, check_out, data_file, describe, file_digest, flag, fmt, make_run_dir,
    interrupted, plot_history, remove_failed_run, run_config, run_dir_for, say,
)
from nerve.cli.data import Prepared, build_optimizer
from nerve.cli.tools import build_adversarial


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


def resume_config(run: Path, given: dict) -> tuple[dict, dict, list[str]]:
    """The run's options with the safe changes of ``given`` applied, its checkpoint, and notes on the changes.

    More epochs or iterations (and --verbose, --eval-iters) may change; any option that shapes the model, its
    data or its optimiser is refused, as is data whose file changed since the run started."""
    from nerve.io import CorruptFileError
    from nerve.train.checkpoint import load_checkpoint
    if not run.is_dir():
        raise CLIError(f"--resume: no run directory {run}")
    cfg = run_config(run)
    path = run / "checkpoint.safetensors"
    if not path.exists():
        raise CLIError(f"--resume: {run} has no checkpoint.safetensors to resume from")
    try:
        state = load_checkpoint(path)
    except (CorruptFileError, ValueError, OSError) as exc:
        raise CLIError(f"--resume: the checkpoint cannot be used: {exc}") from None
    notes, refused = [], []
    for key, value in given.items():
        if key == "out" and value is not None and Path(value) != run:
            refused.append(f"--out {value} (the run is {run})")
        elif key != "out" and value != cfg.get(key):
            if key in RESUME_SAFE:
                notes.append(f"{flag(key)} {value} (was {cfg.get(key)})")
                cfg[key] = value
            else:
                refused.append(f"{flag(key)} {value} (the run has {cfg.get(key)!r})")
    if refused:
        raise CLIError(f"--resume keeps the run's model, data and optimiser; these options differ: "
                       f"{', '.join(refused)}. Only {', '.join(flag(k) for k in RESUME_SAFE)} may change; start a "
                       "new run for the rest")
    done, total = (state["iter"], cfg["iters"]) if "iter" in state else (state["epoch"], cfg["epochs"])
    if total < done:
        unit = "iterations" if "iter" in state else "epochs"
        raise CLIError(f"--resume: the run already did {done} {unit}; {flag('iters' if 'iter' in state else 'epochs')}"
                       f" {total} is fewer")
    if state.get("stop_training") and any(note.startswith("--epochs") for note in notes):
        raise CLIError(f"--resume: the run already stopped ({state.get('stop_reason')}); more epochs would not "
                       "train it further: start a new run (a larger --patience, or --patience 0)")
    source = data_file(cfg)
    if source and cfg.get("data_sha256"):
        if not os.path.isfile(source):
            raise CLIError(f"--resume: the run's data file {source} is not there (the path is relative to where "
                           "the run started)")
        if file_digest(source) != cfg["data_sha256"]:
            raise CLIError(f"--resume: {source} changed since the run started; start a new run on the new data")
    return cfg, state, notes


def init_weights(model, source: str) -> None:
    """``--init``: load the weights of a run directory or a safetensors file; mismatched layers (a new head) keep
    their initialisation."""
    from nerve.models.pretrained import load_init
    try:
        report = load_init(model, source, skip_mismatched=True)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise CLIError(f"--init {source}: {exc}") from None
    say(f"--init: {len(report['loaded'])} tensors from {source}"
        + (f"; kept the new initialisation of {report['skipped']}" if report["skipped"] else ""))


def cmd_train(cfg: dict, run: Path, resume: dict | None, replace: bool) -> int:
    """Train a classifier or regressor into ``run`` (or continue it from the checkpoint ``resume``)."""
    from nerve.distributed import is_main, launched_by_mpi
    from nerve.train import AlignmentLogger, CSVLogger, EarlyStopping, fit
    distributed = launched_by_mpi()  # under mpiexec: data-parallel, only rank 0 prints and writes
    if distributed and not is_main():
        sys.stdout = open(os.devnull, "w")
    prep = Prepared.from_data(cfg)
    if cfg.get("init") and resume is None:  # resuming: the checkpoint holds the weights
        init_weights(prep.model, cfg["init"])
    if cfg.get("freeze"):
        from nerve.models.pretrained import freeze_by_spec
        try:
            say(f"--freeze: {freeze_by_spec(prep.model, cfg['freeze'])}")
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    optimizer = build_optimizer(cfg, prep.model)
    rule = build_rule(cfg, prep.model)
    adversarial = build_adversarial(cfg, prep)
    callbacks = [CSVLogger(run / "history.csv")]
    if cfg.get("rule", "backprop") != "backprop":  # the angles to backprop's updates, per layer and epoch
        callbacks.insert(0, AlignmentLogger(rule, prep.Xtr[:256], prep.ytr[:256], prep.loss))
    stopper = None
    if cfg["patience"]:
        stopper = EarlyStopping("val_loss", patience=cfg["patience"], restore_best_weights=True)
        callbacks.append(stopper)
    if resume is None and (not distributed or is_main()):  # only once the data and model are known to be good
        make_run_dir(run, cfg, replace)
    target = (f"{len(prep.classes)} classes" if prep.classes is not None else
              f"target {cfg['target']!r} standardised for training (mean {fmt(prep.info['target_mean'])}, std "
              f"{fmt(prep.info['target_std'])}); losses below are in standard units")
    say(f"nerve train: {cfg['data']}: {len(prep.Xtr)} training and {len(prep.Xte)} test samples, "
        f"{prep.n_features} features, {target}")
    say(f"  model: {describe(prep.model)}")
    say(f"  {cfg['optimizer']} lr {cfg['lr']}, rule {cfg.get('rule', 'backprop')}, {cfg['epochs']} epochs of batch "
        f"{cfg['batch_size']}, "
        + (f"early stopping on val_loss (patience {cfg['patience']}, best weights restored; --patience 0 turns it "
           "off)" if stopper else "no early stopping"))
    say(f"  run {run}")
    try:
        history = fit(prep.model, (prep.Xtr, prep.ytr), loss=prep.loss, optimizer=optimizer,
                      epochs=cfg["epochs"], batch_size=cfg["batch_size"], validation_split=0.1,
                      metrics=prep.metrics, callbacks=callbacks, rule=None if adversarial else rule,
                      train_step=adversarial, verbose=cfg["verbose"], checkpoint=run / "checkpoint.safetensors",
                      resume=resume is not None, distributed=distributed)
    except KeyboardInterrupt:
        return interrupted(run)
    except BaseException:
        if resume is None:
            remove_failed_run(run)
        raise
    if stopper is not None and stopper.best_epoch is not None:
        stopped = (f"stopped after epoch {stopper.stopped_epoch + 1} of {cfg['epochs']}: val_loss did not improve "
                   f"for {cfg['patience']} epochs; " if stopper.stopped_epoch is not None else "")
        say(f"{stopped}the model keeps the weights of epoch {stopper.best_epoch + 1} (best val_loss "
            f"{fmt(stopper.best)})")
    if distributed and not is_main():
        return 0
    prep.save(run)
    plot_history(run, history.history)
    result = prep.evaluate(prep.Xte, prep.yte)
    print("test " + "  ".join(f"{k} {fmt(v)}" for k, v in result.items()))
    print(f"saved {run / 'model.safetensors'}")
    return 0


def start(cfg: dict, given: dict, resume_dir: str | None, overwrite: bool) -> int:
    """``nerve train``: a new run, or ``--resume``'s continuation with the options ``given`` checked."""
    from nerve.cli.common import LM_MODELS
    from nerve.cli.lm import train_lm
    if resume_dir is not None:
        run = Path(resume_dir)
        cfg, state, notes = resume_config(run, given)
        for note in notes:
            say(f"nerve train: --resume applies {note}")
        if notes:  # the next --resume compares with the options now in force
            (run / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        replace = False
    else:
        run, state = run_dir_for(cfg), None
        replace = check_out(run, overwrite)
    if cfg["model"] in LM_MODELS:
        if cfg["rule"] != "backprop":
            raise CLIError(f"--rule {cfg['rule']}: learning rules train MLP and CNN models, not {cfg['model']}")
        return train_lm(cfg, run, state, replace)
    if "iter" in (state or {}):
        raise CLIError(f"--resume: {run}'s checkpoint is a language model's, but its config says {cfg['model']}")
    return cmd_train(cfg, run, state, replace)
