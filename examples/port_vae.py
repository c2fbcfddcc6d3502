"""A variational autoencoder written the PyTorch way, run on nerve with only the import lines changed.

Run: python examples/port_vae.py [--epochs 40] [--png runs/port_vae.png] [--tiny]
The script uses what such code usually does: ``torch.distributions`` (a diagonal Gaussian posterior, a standard
normal prior, ``kl_divergence``, a Bernoulli likelihood on logits, ``rsample`` for the reparameterisation trick),
``torch.amp.GradScaler`` (disabled in float32, as scripts leave it), ``torch.compile``, ``torch.inference_mode``,
``DataLoader`` over ``TensorDataset``, and ``torch.save``/``torch.load`` of a state dict through a buffer.
Replacing the nerve import lines by their ``torch`` counterparts (in the comments) gives the same script for
PyTorch. Data: scikit-learn's 8x8 digits (no download), pixels scaled to [0, 1]; 1,437 images to train on and
360 to test. It prints the test ELBO (nats per image, higher is better) and saves reconstructions and samples.
"""
import argparse
import io
import os

import numpy as np
from sklearn.datasets import load_digits

import nerve as torch                                      # import torch
import nerve.nn as nn                                      # import torch.nn as nn
import nerve.distributions as D                            # import torch.distributions as D
from nerve.utils.data import DataLoader, TensorDataset     # from torch.utils.data import DataLoader, TensorDataset

LATENT = 8


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 2 * LATENT))
        self.decoder = nn.Sequential(nn.Linear(LATENT, 128), nn.ReLU(), nn.Linear(128, 64))

    def posterior(self, x):
        mu, log_sigma = self.encoder(x).chunk(2, dim=-1)
        return D.Independent(D.Normal(mu, log_sigma.exp()), 1)

    def likelihood(self, z):
        return D.Independent(D.Bernoulli(logits=self.decoder(z)), 1)

    def forward(self, x):
        """The negative ELBO per image (the loss) for a batch."""
        q = self.posterior(x)
        prior = D.Independent(D.Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean)), 1)
        z = q.rsample()
        return (D.kl_divergence(q, prior) - self.likelihood(z).log_prob(x)).mean()


def elbo(model, loader):
    with torch.inference_mode():
        total = sum(-model(x).item() * len(x) for (x,) in loader)
    return total / len(loader.dataset)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--png", default=os.path.join("runs", "port_vae.png"))
    parser.add_argument("--tiny", action="store_true", help="2 epochs, for a smoke run")
    args = parser.parse_args()
    epochs = 2 if args.tiny else args.epochs

    torch.manual_seed(0)
    images = load_digits().data.astype(np.float32) / 16.0
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    train = TensorDataset(torch.from_numpy(images[order[:1437]]))
    test = TensorDataset(torch.from_numpy(images[order[1437:]]))
    train_loader = DataLoader(train, batch_size=64, shuffle=True)
    test_loader = DataLoader(test, batch_size=360)

    model = VAE()
    compiled = torch.compile(model)  # PyTorch's compiled module shares the model's parameters
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    for epoch in range(1, epochs + 1):
        model.train()
        for (x,) in train_loader:
            optimizer.zero_grad()
            loss = compiled(x)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if epoch == 1 or epoch % 10 == 0 or epoch == epochs:
            model.eval()
            train_elbo, test_elbo = elbo(model, train_loader), elbo(model, test_loader)
            print(f"epoch {epoch}: train ELBO {train_elbo:.2f}, test ELBO {test_elbo:.2f}")

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    restored = VAE()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    restored.eval()
    torch.manual_seed(1)
    same = elbo(restored, test_loader)
    torch.manual_seed(1)
    assert abs(same - elbo(model, test_loader)) < 1e-6, "the restored model differs"
    print(f"port_vae: test ELBO {same:.2f} nats per image after {epochs} epochs")
    save_grid(restored, test[:8][0], args.png)


def save_grid(model, originals, path):
    """Test digits, their reconstructions (posterior means decoded), and samples from the prior."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no picture")
        return
    with torch.inference_mode():
        recon = torch.sigmoid(model.decoder(model.posterior(originals).mean))
        samples = torch.sigmoid(model.decoder(torch.randn(8, LATENT)))
    rows = [("test digits", originals), ("reconstructions", recon), ("samples from the prior", samples)]
    fig, axes = plt.subplots(3, 8, figsize=(8, 3.4))
    for r, (title, batch) in enumerate(rows):
        for c in range(8):
            axes[r, c].imshow(batch[c].detach().numpy().reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, loc="left", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
