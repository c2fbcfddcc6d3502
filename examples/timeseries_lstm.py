"""Forecasting a noisy multi-frequency signal with an LSTM, against the naive last-value forecast.

Run: python examples/timeseries_lstm.py [--epochs 20] [--horizon 10]
The signal is a sum of three sines (periods 50, 17 and 7.3 steps, the middle one slowly drifting in
amplitude) plus Gaussian noise of standard deviation 0.2. From the last 64 values the model predicts the next
``--horizon`` values at once (an LSTM reads the window, a linear layer maps its final state to the forecast).
The series' first 80% trains, the last 20% tests. Printed: the test mean squared error of the LSTM and of
repeating the last observed value, per horizon and overall, and the noise floor (the noise variance).
Measured with the defaults: LSTM 0.046 at every horizon (noise floor 0.040), last value 0.14 one step ahead
to 1.45 ten steps ahead; about a minute of training on one core.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import nn  # noqa: E402

NOISE = 0.2


def make_series(n: int, rng: np.random.Generator) -> np.ndarray:
    """The noisy signal, float32 (n,)."""
    t = np.arange(n, dtype=np.float64)
    amplitude = 0.5 + 0.3 * np.sin(2 * np.pi * t / 900)
    clean = (np.sin(2 * np.pi * t / 50) + amplitude * np.sin(2 * np.pi * t / 17 + 1.0)
             + 0.3 * np.sin(2 * np.pi * t / 7.3 + 2.0))
    return (clean + rng.normal(0.0, NOISE, n)).astype(np.float32)


def windows(series: np.ndarray, window: int, horizon: int) -> tuple:
    """All (past ``window`` values, next ``horizon`` values) pairs: X (N, window, 1), Y (N, horizon)."""
    n = len(series) - window - horizon + 1
    index = np.arange(n)[:, None]
    x = series[index + np.arange(window)]
    y = series[index + window + np.arange(horizon)]
    return x[:, :, None], y


class Forecaster(nn.Module):
    """LSTM over the window; the final hidden state of the last layer gives all horizons at once."""

    def __init__(self, hidden: int, horizon: int, layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=12000, help="points in the series")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    series = make_series(args.length, np.random.default_rng(args.seed))
    cut = int(0.8 * len(series))
    x_train, y_train = windows(series[:cut], args.window, args.horizon)
    x_test, y_test = windows(series[cut:], args.window, args.horizon)
    print(f"series of {len(series)} points (noise sd {NOISE}): {len(x_train)} training and {len(x_test)} test "
          f"windows of {args.window}, forecasting {args.horizon} steps ahead")
    model = Forecaster(args.hidden, args.horizon)
    optimizer = nerve.optim.Adam(model.parameters(), lr=3e-3)
    schedule = nerve.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(args.epochs, 1))
    start = time.perf_counter()
    nerve.train.fit(model, (x_train, y_train), loss=nn.MSELoss(), optimizer=optimizer, epochs=args.epochs,
                    batch_size=64, verbose=0, callbacks=[nerve.train.LearningRateScheduler(schedule)])
    elapsed = time.perf_counter() - start
    predicted = nerve.train.predict(model, x_test, batch_size=512).numpy()
    lstm_mse = ((predicted - y_test) ** 2).mean(axis=0)
    naive_mse = ((x_test[:, -1, :] - y_test) ** 2).mean(axis=0)
    print(f"trained {args.epochs} epochs in {elapsed:.1f} s")
    print(f"{'steps ahead':<14}" + "".join(f"{h + 1:>7d}" for h in range(args.horizon)) + f"{'all':>9}")
    print(f"{'LSTM MSE':<14}" + "".join(f"{v:7.3f}" for v in lstm_mse) + f"{lstm_mse.mean():9.4f}")
    print(f"{'last value MSE':<14}" + "".join(f"{v:7.3f}" for v in naive_mse) + f"{naive_mse.mean():9.4f}")
    print(f"noise floor {NOISE ** 2:.3f}; LSTM error / last-value error: {lstm_mse.mean() / naive_mse.mean():.2f}")


if __name__ == "__main__":
    main()
