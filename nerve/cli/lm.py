"""Character-level language models on the command line (``--model char-lstm|char-gru|gpt``): training on
random windows with a checkpoint every 250 iterations and on Ctrl-C (exit 130, resumable), and the finished
run's ``evaluate`` (validation loss on a text) and ``predict`` (text generated from a prompt). The run's
``model.safetensors`` holds the vocabulary, so neither needs the training text."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from nerve.cli.common import DEFAULTS, CLIError, describe, fmt, interrupted, make_run_dir, remove_failed_run, say
from nerve.cli.data import RUN_KEY, build_optimizer
from nerve.train.loop import DeferredInterrupt

CHECKPOINT_EVERY = 250


def lm_text(cfg: dict, who: str = "train") -> str:
    if cfg["data"] == "shakespeare":
        from nerve.data.datasets import load_shakespeare
        try:
            return load_shakespeare()
        except (OSError, RuntimeError, ValueError) as exc:
            raise CLIError(f"--data shakespeare: {' '.join(str(exc).split())}") from None
    if cfg["data"].startswith("text:"):
        return read_text(cfg["data"][5:], f"{who}: text")
    raise CLIError(f"--model {cfg['model']} trains on text: --data shakespeare or text:PATH, not {cfg['data']!r}")


def read_text(path: str, who: str) -> str:
    if not os.path.isfile(path):
        raise CLIError(f"{who}: no file {path!r}")
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CLIError(f"{who}: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _batch(cfg: dict) -> int:
    gpt = cfg["model"] == "gpt"
    return cfg["batch_size"] if cfg["batch_size"] != DEFAULTS["batch_size"] or not gpt else 12


def _build(cfg: dict, chars: str):
    from nerve.models import GPT, CharRNN
    if cfg["model"] == "gpt":  # nanoGPT's shakespeare_char CPU configuration
        return GPT(len(chars), block_size=cfg["block_size"], n_layer=4, n_head=4, n_embd=128, dropout=cfg["dropout"])
    return CharRNN(len(chars), 64, 256, cell=cfg["model"][5:], chars=chars)


def train_lm(cfg: dict, run: Path, resume: dict | None, replace: bool) -> int:
    """Train (or, with a checkpoint ``resume``, continue) a character-level language model in ``run``."""
    import nerve
    from nerve import backend
    from nerve.data.text import CharVocab, random_windows, split_text
    from nerve.models.gpt import warmup_cosine
    from nerve.train.checkpoint import save_checkpoint
    nerve.manual_seed(cfg["seed"])
    text = lm_text(cfg)
    try:
        vocab = CharVocab(text)
        train_ids, val_ids = split_text(vocab.encode(text), 0.1)
    except ValueError as exc:
        raise CLIError(f"--data {cfg['data']}: {exc}") from None
    block, batch, gpt = cfg["block_size"], _batch(cfg), cfg["model"] == "gpt"
    if len(val_ids) < block + 1:
        raise CLIError(f"--data {cfg['data']}: {len(text):,} characters are too few for windows of --block-size "
                       f"{block}: the validation tenth ({len(val_ids)}) needs at least {block + 1}")
    if resume is not None and resume.get("chars") != vocab.chars:
        raise CLIError(f"--resume: the text of --data {cfg['data']} changed since the run started (another "
                       "vocabulary); start a new run")
    model = _build(cfg, vocab.chars)
    optimizer = (model.configure_optimizers(0.1, cfg["lr"], (0.9, 0.99), decay_embeddings=True) if gpt
                 else build_optimizer(cfg, model))
    rng = np.random.default_rng(cfg["seed"])
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        rng.bit_generator.state = resume["windows_rng"]
        backend.set_rng_state(resume["rng"])
        start = resume["iter"]
    else:
        make_run_dir(run, cfg, replace)
    ckpt = run / "checkpoint.safetensors"
    say(f"nerve train: {cfg['data']}: {len(text):,} characters, vocabulary {vocab.size}; model: {describe(model)}; "
        f"{cfg['iters']} iterations of batch {batch} x {block}{f' from iteration {start}' if start else ''}; "
        f"run {run}")

    def val_loss(iters: int = 20) -> float:
        model.eval()
        with nerve.no_grad():
            losses = [model.loss(model(x), y).item() for x, y in
                      (random_windows(val_ids, block, batch, rng) for _ in range(iters))]
        model.train()
        return float(np.mean(losses))

    def save(done: int) -> None:
        save_checkpoint({"iter": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "windows_rng": rng.bit_generator.state, "rng": backend.get_rng_state(),
                         "chars": vocab.chars}, ckpt)

    begin = time.perf_counter()
    try:
        with DeferredInterrupt("iteration") as interrupt:
            for it in range(start, cfg["iters"]):
                if gpt:
                    for group in optimizer.param_groups:
                        group["lr"] = warmup_cosine(it, cfg["lr"], 100, cfg["iters"], cfg["lr"] / 10)
                x, y = random_windows(train_ids, block, batch, rng)
                loss = model.loss(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                nerve.optim.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                if cfg["verbose"] and (it % CHECKPOINT_EVERY == 0 or it == cfg["iters"] - 1):
                    print(f"iter {it}: loss {fmt(loss.item())}, val loss {fmt(val_loss())}, "
                          f"{time.perf_counter() - begin:.0f} s", flush=True)
                if interrupt.pending or (it + 1) % CHECKPOINT_EVERY == 0:
                    save(it + 1)
                if interrupt.pending:
                    raise KeyboardInterrupt
            save(cfg["iters"])
    except KeyboardInterrupt:
        return interrupted(run)
    except BaseException:
        if resume is None:
            remove_failed_run(run)
        raise
    nerve.save(model, run / "model.safetensors",
               metadata={"chars": vocab.chars, "cli": cfg,
                         RUN_KEY: {"kind": "lm", "class": type(model).__name__, "config": model.get_config(),
                                   "chars": vocab.chars}})
    print(f"validation loss {fmt(val_loss(cfg['eval_iters']))} nats per character")
    print("sample:\n" + generate(model, vocab.chars, vocab.decode(val_ids[:1]), 300, 0.8, None))
    print(f"saved {run / 'model.safetensors'}")
    return 0


def generate(model, chars: str, prompt: str, length: int, temperature: float, seed: int | None) -> str:
    """The prompt and ``length`` characters sampled after it (top 20)."""
    import nerve
    unknown = sorted(set(prompt) - set(chars))
    if unknown:
        raise CLIError(f"predict: the prompt has characters the model never saw: {unknown!r}")
    if not prompt:
        raise CLIError("predict: the prompt is empty; give at least one character")
    generator = np.random.default_rng(seed) if seed is not None else None
    if type(model).__name__ == "GPT":
        lookup = {c: i for i, c in enumerate(chars)}
        ids = model.generate(nerve.tensor(np.array([[lookup[c] for c in prompt]], dtype=np.int64)), length,
                             temperature=temperature, top_k=20, generator=generator).numpy()[0]
        return "".join(chars[i] for i in ids)
    return model.generate(prompt, length, temperature=temperature, top_k=20, generator=generator)


def load_lm(run: Path, cfg: dict, meta: dict, state: dict):
    """The model and vocabulary of a finished language-model run."""
    from nerve.models import GPT, CharRNN
    try:
        info = json.loads(meta[RUN_KEY])
        model = (GPT if info["class"] == "GPT" else CharRNN)(**info["config"])
        model.load_state_dict(state)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CLIError(f"cannot use the weights in {run / 'model.safetensors'}: {exc}") from None
    return model, info["chars"]


def evaluate_lm(model, chars: str, cfg: dict, text: str, source: str) -> float:
    """Mean next-character cross-entropy (nats) over the text cut into windows of the run's block size."""
    import nerve
    unknown = sorted(set(text) - set(chars))
    if unknown:
        raise CLIError(f"evaluate: {source} has characters the model never saw: {unknown[:10]!r}")
    if len(text) < 2:
        raise CLIError(f"evaluate: {source} needs at least 2 characters (one to predict from, one to predict)")
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.array([lookup[c] for c in text], dtype=np.int64)
    block, total, count = cfg["block_size"], 0.0, 0
    model.eval()
    with nerve.no_grad():
        for lo in range(0, len(ids) - 1, block):
            window = ids[lo:lo + block + 1]
            if len(window) < 2:
                break
            n = len(window) - 1
            total += model.loss(model(nerve.tensor(window[None, :-1])), nerve.tensor(window[None, 1:])).item() * n
            count += n
    return total / count
