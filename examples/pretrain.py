"""Train the small networks that ship with nerve (``nerve.models.pretrained``) and write their weights with the
recipe, the test accuracy and the input scaling in the metadata; prints each file's sha256 for the registry.

    python examples/pretrain.py --data /work/shared/data            # writes nerve/models/weights/*.safetensors
    python examples/pretrain.py --tiny --out /tmp/w                 # seconds: a smoke test

digits-mlp: MLP 64-128-10 on scikit-learn's 8x8 digits (80/20 split, seed 0), Adam 1e-3, 40 epochs, batch 32.
fashion-lenet: LeNet-5 (ReLU, max pooling) on Fashion-MNIST's 60,000 training images, Adam 1e-3, 6 epochs,
batch 128, tested on its 10,000 test images.
shakespeare-gpt: a 2-layer GPT (4 heads, 64 wide, context 64) on tiny Shakespeare's first 90%, AdamW (nanoGPT's
settings: weight decay 0.1, betas 0.9/0.99) at 2e-3 with warm-up and cosine decay, --gpt-iters batches of 32,
scored by the mean loss of 50 seeded validation batches of the last 10%.
"""
from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np

import nerve
from nerve import optim
from nerve.models import MLP, LeNet5
from nerve.train import evaluate, fit

ROOT = Path(__file__).resolve().parents[1]


def _digits(tiny: bool):
    from sklearn.model_selection import train_test_split

    from nerve.data.datasets import load_digits

    X, y = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return (Xtr[:200], ytr[:200], Xte, yte) if tiny else (Xtr, ytr, Xte, yte)


def _fashion(data: str | None, tiny: bool):
    from nerve.data.datasets import load_fashion_mnist

    root = None if data is None else os.path.join(data, "fashion-mnist")
    Xtr, ytr = load_fashion_mnist(root, train=True)
    Xte, yte = load_fashion_mnist(root, train=False)
    return (Xtr[:512], ytr[:512], Xte[:512], yte[:512]) if tiny else (Xtr, ytr, Xte, yte)


def train_one(name: str, model, data: tuple, epochs: int, batch_size: int, recipe: str, extra: dict,
              out: Path) -> str:
    """Fit, test, save with metadata; returns the file's sha256."""
    Xtr, ytr, Xte, yte = data
    mean, std = float(Xtr.mean()), float(Xtr.std())
    Xtr, Xte = ((Xtr - mean) / std).astype(np.float32), ((Xte - mean) / std).astype(np.float32)
    fit(model, (Xtr, ytr), loss="cross_entropy", optimizer=optim.Adam(model.parameters(), lr=1e-3), epochs=epochs,
        batch_size=batch_size, verbose=0)
    accuracy = evaluate(model, (Xte, yte), metrics=["accuracy"])["accuracy"]
    path = out / f"{name.replace('-', '_')}.safetensors"
    nerve.save(model.state_dict(), path, metadata={
        "architecture": type(model).__name__, "config": model.get_config(), "recipe": recipe,
        "test_accuracy": round(float(accuracy), 4), "input_mean": mean, "input_std": std, **extra})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{name}: test accuracy {accuracy:.4f}, {path.stat().st_size / 1024:.0f} KiB, sha256 {digest}")
    return digest


def train_gpt(data: str | None, iters: int, out: Path) -> str:
    """The small character GPT; returns the file's sha256."""
    from nerve.data.datasets import load_shakespeare
    from nerve.data.text import CharVocab, random_windows, split_text
    from nerve.models import GPT
    from nerve.models.gpt import warmup_cosine

    text = load_shakespeare(None if data is None else os.path.join(data, "tinyshakespeare"))
    vocab = CharVocab(text)
    train_ids, val_ids = split_text(vocab.encode(text), 0.1)
    nerve.manual_seed(0)
    model = GPT(vocab.size, block_size=64, n_layer=2, n_head=4, n_embd=64)
    opt = model.configure_optimizers(0.1, 2e-3, (0.9, 0.99), decay_embeddings=True)
    rng = np.random.default_rng(0)
    for it in range(iters):
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(it, 2e-3, min(100, iters), iters, 2e-4)
        x, y = random_windows(train_ids, 64, 32, rng)
        opt.zero_grad()
        loss = model.loss(model(nerve.tensor(x)), nerve.tensor(y))
        loss.backward()
        opt.step()
    model.eval()
    val_rng = np.random.default_rng(1)
    with nerve.no_grad():
        val = float(np.mean([model.loss(model(nerve.tensor(x)), nerve.tensor(y)).item()
                             for x, y in (random_windows(val_ids, 64, 32, val_rng) for _ in range(50))]))
    path = out / "shakespeare_gpt.safetensors"
    nerve.save(model.state_dict(), path, metadata={
        "architecture": "GPT", "config": model.get_config(), "val_loss": round(val, 4), "chars": "".join(vocab.chars),
        "data": "tiny Shakespeare (first 90% for training, last 10% for validation)",
        "recipe": f"examples/pretrain.py: GPT 2 layers, 4 heads, 64 wide, context 64; AdamW lr 2e-3 (warm-up 100, "
                  f"cosine to 2e-4), weight decay 0.1, betas 0.9/0.99, {iters} batches of 32"})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"shakespeare-gpt: validation loss {val:.4f} nats per character, {path.stat().st_size / 1024:.0f} KiB, "
          f"sha256 {digest}")
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("NERVE_DATA"), help="folder holding fashion-mnist/")
    parser.add_argument("--out", default=str(ROOT / "nerve" / "models" / "weights"))
    parser.add_argument("--gpt-iters", type=int, default=3000, dest="gpt_iters")
    parser.add_argument("--tiny", action="store_true", help="a few hundred images, one epoch (smoke test)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    nerve.manual_seed(0)
    train_one("digits-mlp", MLP(64, [128], 10), _digits(args.tiny), 1 if args.tiny else 40, 32,
              "examples/pretrain.py: MLP 64-128-10, Adam lr 1e-3, 40 epochs, batch 32, sklearn digits 80/20 "
              "split (random_state 0, stratified); inputs (x - input_mean) / input_std",
              {"data": "sklearn digits (8x8, 0..16)", "classes": [str(i) for i in range(10)]}, out)
    nerve.manual_seed(0)
    train_one("fashion-lenet", LeNet5(1, 10), _fashion(args.data, args.tiny), 1 if args.tiny else 6, 128,
              "examples/pretrain.py: LeNet5 (relu, max pool), Adam lr 1e-3, 6 epochs, batch 128, Fashion-MNIST "
              "60,000 training images; inputs (x - input_mean) / input_std on pixels in [0, 1]",
              {"data": "Fashion-MNIST (28x28, pixels in [0, 1])",
               "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                           "Bag", "Ankle boot"]}, out)
    train_gpt(args.data, 5 if args.tiny else args.gpt_iters, out)


if __name__ == "__main__":
    main()
