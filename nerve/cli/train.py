"""``nerve train``: a classifier or regressor on a data set (with a learning rule), or a character-level
language model."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from nerve.cli.common import (
    DEFAULTS, RULES, CLIError, Prepared, build_optimizer, plot_history, run_dir_for, save_weights,
)
from nerve.cli.tools import build_adversarial


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
    run = run_dir_for(cfg)
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
        run = run_dir_for(cfg)
    prep = Prepared(cfg)
    optimizer = build_optimizer(cfg, prep.model)
    rule = build_rule(cfg, prep.model)
    adversarial = build_adversarial(cfg, prep)
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
                      metrics=prep.metrics, callbacks=callbacks, rule=None if adversarial else rule,
                      train_step=adversarial,
                      verbose=cfg["verbose"], checkpoint=run / "checkpoint.safetensors",
                      resume=resume_dir is not None)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the checkpoint in {run} is whole; continue with: nerve train --resume {run}",
              file=sys.stderr)
        return 130
    save_weights(run, prep, cfg)
    plot_history(run, history.history)
    result = nerve.train.evaluate(prep.model, (prep.Xte, prep.yte), loss=prep.loss, metrics=prep.metrics)
    print("test " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    print(f"saved {run / 'model.safetensors'}")
    return 0
