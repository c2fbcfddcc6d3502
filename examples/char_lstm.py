"""Character-level LSTM language model on tiny shakespeare: train within a time budget, report the validation
loss in nats per character, and print a sample.

Run: python examples/char_lstm.py [--minutes 20] [--data PATH] [--cell lstm|gru] [--hidden 256] [--layers 1]
Data: ``--data`` (the file or its directory), else ../shared/data/tinyshakespeare when present, else nerve's
loader (NERVE_DATA, the cache, then a download with checksum). The first 90% of the text trains, the last 10%
validates. Training is truncated backpropagation through time: the text is cut into ``--batch`` parallel
streams walked ``--seq`` characters at a time, each chunk starting from the previous chunk's final state
detached from its graph. The learning rate follows a cosine from ``--lr`` to lr/20 over the time budget.
Validation runs over the whole validation text the same way (state carried, every character predicted
with its full history), and the weights of the best validation run are kept. A bigram model scores 2.48
nats per character; the goal here is <= 1.70. Measured with the defaults (1-layer LSTM, hidden 256, seq 64,
batch 32): validation 1.68 after 1,100 steps and 1.62 after 1,500 (about 3M characters seen), which takes a
couple of minutes on a quiet 2-core machine; the rest of the budget lowers it further. ``--hidden 512``
learns more per step at about three times the cost per step.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve.data.datasets import load_shakespeare  # noqa: E402
from nerve.data.text import CharVocab, split_text  # noqa: E402
from nerve.models import CharRNN  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def streams(ids: np.ndarray, batch: int, offset: int = 0) -> tuple:
    """The text cut into ``batch`` equal contiguous streams (from ``offset``): inputs and next characters."""
    n = (len(ids) - 1 - offset) // batch
    x = ids[offset:offset + batch * n].reshape(batch, n)
    y = ids[offset + 1:offset + 1 + batch * n].reshape(batch, n)
    return x, y


def evaluate(model: CharRNN, ids: np.ndarray, batch: int = 32, seq: int = 256) -> float:
    """Mean cross-entropy (nats per character) over the whole of ``ids``, state carried between chunks."""
    x, y = streams(ids, batch)
    model.eval()
    total, count, state = 0.0, 0, None
    with nerve.no_grad():
        for start in range(0, x.shape[1], seq):
            xb, yb = x[:, start:start + seq], y[:, start:start + seq]
            logits, state = model(nerve.tensor(xb), state, return_state=True)
            total += CharRNN.loss(logits, nerve.tensor(yb)).item() * yb.size
            count += yb.size
    model.train()
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None,
                        help="tiny shakespeare's input.txt or a directory holding it")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps (smoke tests)")
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--seq", type=int, default=64, help="characters per truncated-BPTT chunk")
    parser.add_argument("--batch", type=int, default=32, help="parallel streams")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--clip", type=float, default=5.0, help="gradient norm limit")
    parser.add_argument("--eval-every", type=float, default=60.0, help="seconds between validation runs")
    parser.add_argument("--sample", type=int, default=600, help="characters to generate at the end")
    parser.add_argument("--save", default=None, help="write the model (weights, config, vocabulary) to this file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    text = load_shakespeare(args.data)
    vocab = CharVocab(text)
    train_ids, val_ids = split_text(vocab.encode(text), 0.1)
    model = CharRNN(vocab.size, args.embedding, args.hidden, args.layers, args.cell, args.dropout, vocab.chars)
    params = list(model.parameters())
    optimizer = nerve.optim.Adam(params, lr=args.lr)
    print(f"tiny shakespeare: {len(text):,} characters, vocabulary {vocab.size}; train {len(train_ids):,}, "
          f"validation {len(val_ids):,}")
    print(f"{args.layers}-layer {args.cell.upper()} hidden {args.hidden} ({sum(p.numel() for p in params):,} "
          f"parameters), seq {args.seq}, batch {args.batch}, Adam lr {args.lr}, clip {args.clip}, "
          f"budget {args.minutes:g} min")

    budget = args.minutes * 60.0
    start = last_eval = time.perf_counter()
    step, epoch, best, best_state = 0, 0, math.inf, None
    running = None
    done = False
    while not done:
        # a new random offset each epoch moves the chunk boundaries
        x, y = streams(train_ids, args.batch, int(rng.integers(0, args.seq)))
        state = None
        for pos in range(0, x.shape[1] - args.seq + 1, args.seq):
            elapsed = time.perf_counter() - start
            if elapsed >= budget or (args.steps is not None and step >= args.steps):
                done = True
                break
            for group in optimizer.param_groups:
                group["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
            xb, yb = nerve.tensor(x[:, pos:pos + args.seq]), nerve.tensor(y[:, pos:pos + args.seq])
            logits, state = model(xb, state, return_state=True)
            state = CharRNN.detach_state(state)
            loss = CharRNN.loss(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            nerve.optim.clip_grad_norm_(params, args.clip)
            optimizer.step()
            step += 1
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            if time.perf_counter() - last_eval >= args.eval_every:
                val = evaluate(model, val_ids)
                if val < best:
                    best, best_state = val, {k: v.numpy().copy() for k, v in model.state_dict().items()}
                last_eval = time.perf_counter()
                print(f"{(last_eval - start) / 60:6.1f} min  step {step:6d}  epoch {epoch}  train {running:.3f}  "
                      f"val {val:.3f}  ({(last_eval - start) / step * 1e3:.0f} ms/step)", flush=True)
        epoch += 1
    train_time = time.perf_counter() - start
    val = evaluate(model, val_ids)
    print(f"final: {step} steps ({epoch} epochs started) in {train_time / 60:.1f} min, "
          f"{train_time / max(step, 1) * 1e3:.0f} ms/step; validation loss at the end {val:.3f} nats/char")
    if best < val:  # it began to overfit: keep the weights of the best validation run
        model.load_state_dict(best_state)
        val = best
    print(f"validation loss {val:.3f} nats/char (goal <= 1.70)")
    if args.save:
        nerve.save(model, args.save)
        print(f"saved {args.save}")
    if args.sample:
        print("sample (temperature 0.8):")
        print(model.generate("ROMEO:\n", args.sample, temperature=0.8, generator=args.seed))


if __name__ == "__main__":
    main()
