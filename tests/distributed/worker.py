"""Run under ``mpiexec`` by tests/distributed/test_mpi.py: ``python worker.py MODE OUT_DIR``; rank 0 saves results."""
import os
import sys
import time
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import nerve  # noqa: E402
import nerve.distributed as dist  # noqa: E402
from nerve import nn, optim  # noqa: E402
from nerve.train import CSVLogger, fit  # noqa: E402

N, GLOBAL_BATCH, EPOCHS, SEED = 64, 16, 2, 3


def problem(dtype: str, hidden: int = 16):
    """The model (seeded, so every rank builds the same one) and a small classification set."""
    nerve.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, hidden), nn.Tanh(), nn.Linear(hidden, 3)).to(dtype=getattr(nerve, dtype))
    rng = numpy.random.default_rng(1)
    return model, rng.normal(size=(N, 6)).astype(dtype), rng.integers(0, 3, N)


def make_optimizer(name: str, model):
    if name == "sgd":
        return optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return optim.Adam(model.parameters(), lr=1e-2)


def hand_loop(optimizer_name: str, dtype: str) -> dict:
    """The hand-written loop: DistributedSampler shards, DistributedOptimizer averages."""
    model, x, y = problem(dtype)
    # float32 in 256-byte buckets: several Allreduce requests in flight; float64 in one
    opt = dist.DistributedOptimizer(make_optimizer(optimizer_name, model), named_parameters=model.named_parameters(),
                                    bucket_bytes=256 if dtype == "float32" else dist.optimizer.BUCKET_BYTES)
    sampler = dist.DistributedSampler(x, shuffle=True, seed=SEED)
    per_rank = GLOBAL_BATCH // dist.world_size()
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        shard = numpy.fromiter(sampler, dtype=numpy.int64)
        for k in range(0, len(shard), per_rank):
            idx = shard[k:k + per_rank]
            opt.zero_grad()
            nerve.functional.cross_entropy(model(nerve.tensor(x[idx])), nerve.tensor(y[idx])).backward()
            opt.step()
    return {f"{optimizer_name}_{dtype}_{k}": v.numpy() for k, v in model.state_dict().items()}


def run_fit(out: Path, epochs: int, batch: int, **kwargs) -> dict:
    model, x, y = problem("float64")
    history = fit(model, (x, y), loss="cross_entropy", optimizer=make_optimizer("adam", model), epochs=epochs,
                  batch_size=batch, verbose=2, distributed=True, validation_data=(x[:20], y[:20]),
                  metrics=["accuracy"], **kwargs)
    logs = {f"history_{k}": numpy.array(v) for k, v in history.history.items()}
    return {**logs, **{k: v.numpy() for k, v in model.state_dict().items()}}


def main(mode: str, out: Path) -> None:
    dist.init(timeout=float(os.environ.get("WORKER_TIMEOUT", "60")))
    results: dict = {}
    if mode == "equal":
        for name in ("sgd", "adam"):
            for dtype in ("float64", "float32"):
                results.update(hand_loop(name, dtype))
    elif mode == "fit":  # 2 ranks: one epoch with a checkpoint, then resume it for the second epoch
        run_fit(out, 1, GLOBAL_BATCH // dist.world_size(), checkpoint=out / "epoch1.ckpt",
                callbacks=[CSVLogger(out / f"log_rank{dist.rank()}.csv")])
        results = run_fit(out, EPOCHS, GLOBAL_BATCH // dist.world_size(), resume=out / "epoch1.ckpt")
    elif mode == "resume":  # 1 rank: resume the 2-rank checkpoint, and the same run from scratch
        results = {"resumed_" + k: v for k, v in run_fit(out, EPOCHS, GLOBAL_BATCH, resume=out / "epoch1.ckpt").items()}
        results.update({"scratch_" + k: v for k, v in run_fit(out, EPOCHS, GLOBAL_BATCH).items()})
    elif mode == "mismatch":
        model, _, _ = problem("float64", hidden=16 if dist.rank() == 0 else 8)
        dist.broadcast_parameters(model)
    elif mode == "die":
        if dist.rank() == 1:
            os._exit(3)
        dist.allreduce(numpy.ones(3))
        (out / "survived").write_text("rank 0 went on after rank 1 died")
    elif mode == "stall":
        if dist.rank() == 1:
            time.sleep(30)
        dist.allreduce(numpy.ones(3))
    else:
        raise ValueError(f"unknown mode {mode!r}")
    if dist.is_main():
        numpy.savez(out / f"{mode}.npz", world=dist.world_size(), **results)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
