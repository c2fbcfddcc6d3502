"""A PyTorch training script run on nerve with only the import lines changed: Fashion-MNIST, pytorch/examples' CNN.

Run: python examples/port_from_pytorch.py [--data DIR] [--epochs 1] [--limit N] [--num-workers 0]
It has the usual shape of a PyTorch script (pytorch/examples' mnist/main.py): a Dataset subclass over the
IDX arrays, DataLoaders, a Module, the device chosen the torch way, a train loop with zero_grad/backward/step and
a test loop under no_grad counting ``pred.eq(target.view_as(pred)).sum().item()``. Replacing the six nerve
import lines by their ``torch`` counterparts (in the comments) gives the same script for PyTorch.
DIR holds the four Fashion-MNIST IDX files (default: ../shared/data/fashion-mnist); ``--limit N`` keeps the
first N training and test images, for a quick smoke run.
"""
import argparse
import gzip
import os

import numpy as np

import nerve as torch                                # import torch
import nerve.nn as nn                                # import torch.nn as nn
import nerve.functional as F                         # import torch.nn.functional as F
import nerve.optim as optim                          # import torch.optim as optim
from nerve.optim.lr_scheduler import StepLR          # from torch.optim.lr_scheduler import StepLR
from nerve.utils.data import DataLoader, Dataset     # from torch.utils.data import DataLoader, Dataset

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "fashion-mnist")
MEAN, STD = 0.2860, 0.3530   # Fashion-MNIST's training-set pixel statistics


def read_idx(path):
    """An IDX file (optionally gzipped) as a NumPy array."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class FashionMNIST(Dataset):
    def __init__(self, root, train=True, limit=None):
        prefix = "train" if train else "t10k"
        self.images = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))[:limit]
        self.labels = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))[:limit]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        image = (self.images[index].astype(np.float32) / 255.0 - MEAN) / STD
        return torch.from_numpy(image).unsqueeze(0), int(self.labels[index])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)} "
                  f"({100.0 * batch_idx / len(train_loader):.0f}%)]\tLoss: {loss.item():.6f}")


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    accuracy = correct / len(test_loader.dataset)
    print(f"Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)} "
          f"({100.0 * accuracy:.2f}%)")
    return accuracy


def main():
    parser = argparse.ArgumentParser(description="Fashion-MNIST, PyTorch's example CNN")
    parser.add_argument("--data", default=SHARED)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-batch-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=100)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train and test images")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_kwargs = {"batch_size": args.batch_size, "shuffle": True, "num_workers": args.num_workers}
    test_kwargs = {"batch_size": args.test_batch_size}
    if device.type == "cuda":
        train_kwargs["pin_memory"] = True

    train_loader = DataLoader(FashionMNIST(args.data, train=True, limit=args.limit), **train_kwargs)
    test_loader = DataLoader(FashionMNIST(args.data, train=False, limit=args.limit), **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        accuracy = test(model, device, test_loader)
        scheduler.step()
    print(f"test accuracy {accuracy:.4f} on {device}")


if __name__ == "__main__":
    main()
