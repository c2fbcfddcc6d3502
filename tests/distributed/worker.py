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


def train_shards(model, opt, x, y) -> None:
    """The hand-written loop: each rank steps on its DistributedSampler shard, reshuffled per epoch."""
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


def hand_loop(optimizer_name: str, dtype: str) -> dict:
    """The hand-written loop: DistributedSampler shards, DistributedOptimizer averages."""
    model, x, y = problem(dtype)
    # float32 in 256-byte buckets: several Allreduce requests in flight; float64 in one
    opt = dist.DistributedOptimizer(make_optimizer(optimizer_name, model), named_parameters=model.named_parameters(),
                                    bucket_bytes=256 if dtype == "float32" else dist.optimizer.BUCKET_BYTES)
    train_shards(model, opt, x, y)
    return {f"{optimizer_name}_{dtype}_{k}": v.numpy() for k, v in model.state_dict().items()}


def _local_grads(model, x, y) -> list:
    loss = nerve.functional.cross_entropy(model(nerve.tensor(x)), nerve.tensor(y))
    return [g.numpy() for g in nerve.autograd.grad(loss, list(model.parameters()))]


def _mean_over_ranks(grads: list) -> list:
    everyone = dist.allgather_object(grads)
    return [numpy.mean([theirs[i] for theirs in everyone], axis=0) for i in range(len(grads))]


def _gap(model, expected: list) -> float:
    return max(float(numpy.abs(p.grad.numpy() - e).max()) for p, e in zip(model.parameters(), expected))


def overlap_checks() -> dict:
    """Gradients averaged by the end of backward (several buckets), accumulation over two backward passes, a
    third pass refused, and a head that only rank 0 uses."""
    model, x, y = problem("float64")
    mine = slice(8 * dist.rank(), 8 * dist.rank() + 8)
    expected = _mean_over_ranks(_local_grads(model, x[mine], y[mine]))
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1), bucket_bytes=256)
    opt.zero_grad()
    nerve.functional.cross_entropy(model(nerve.tensor(x[mine])), nerve.tensor(y[mine])).backward()
    results = {"after_backward_gap": _gap(model, expected), "buckets": len(opt._averager.buckets)}
    opt.step()

    model, x, y = problem("float64")
    halves = [slice(16 * dist.rank() + 8 * k, 16 * dist.rank() + 8 * k + 8) for k in range(2)]
    local = [a + b for a, b in zip(*(_local_grads(model, x[h], y[h]) for h in halves))]
    expected = _mean_over_ranks(local)
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1), backward_passes_per_step=2)
    opt.zero_grad()
    for h in halves:
        nerve.functional.cross_entropy(model(nerve.tensor(x[h])), nerve.tensor(y[h])).backward()
    results["accumulated_gap"] = _gap(model, expected)
    try:
        nerve.functional.cross_entropy(model(nerve.tensor(x[:4])), nerve.tensor(y[:4])).backward()
    except RuntimeError as exc:
        results["third_pass_error"] = str(exc)
    opt.zero_grad()

    nerve.manual_seed(0)
    trunk, head_a, head_b = (nn.Linear(i, o).to(dtype=nerve.float64) for i, o in ((6, 4), (4, 3), (4, 3)))
    params = [*trunk.parameters(), *head_a.parameters(), *head_b.parameters()]
    opt = dist.DistributedOptimizer(optim.SGD(params, lr=0.1), bucket_bytes=64)
    h = trunk(nerve.tensor(x[mine]))
    loss = head_a(h).sum() + (head_b(h).sum() if dist.rank() == 0 else 0.0)
    local_b = [g.numpy() for g in nerve.autograd.grad(loss, list(head_b.parameters()), retain_graph=True,
                                                      allow_unused=True)] if dist.rank() == 0 else None
    loss.backward()
    opt.synchronize()
    reference = dist.broadcast_object(local_b)
    results["unused_head_gap"] = max(float(numpy.abs(p.grad.numpy() - r / dist.world_size()).max())
                                     for p, r in zip(head_b.parameters(), reference))
    return results


def ddp_loop(optimizer_name: str, dtype: str) -> dict:
    """The hand-written loop with PyTorch's design: the model wrapped, a plain optimiser over its parameters.
    Rank 1 starts from other weights: wrapping broadcasts rank 0's."""
    model, x, y = problem(dtype)
    if dist.rank() == 1:
        for p in model.parameters():
            p.data += 1.0
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=256 / 2 ** 20)
    opt = make_optimizer(optimizer_name, ddp)
    train_shards(ddp, opt, x, y)
    keys = set(ddp.state_dict())
    assert keys == {f"module.{k}" for k in model.state_dict()}, keys
    return {f"ddp_{optimizer_name}_{dtype}_{k}": v.numpy() for k, v in model.state_dict().items()}


def ddp_checks() -> dict:
    """no_sync accumulation, find_unused_parameters, the error without it, and torch.distributed's names."""
    dist.init_process_group("gloo", world_size=dist.get_world_size())
    results: dict = {"rank": dist.get_rank(), "initialized": dist.is_initialized()}
    model, x, y = problem("float64")
    halves = [slice(16 * dist.rank() + 8 * k, 16 * dist.rank() + 8 * k + 8) for k in range(2)]
    expected = _mean_over_ranks([a + b for a, b in zip(*(_local_grads(model, x[h], y[h]) for h in halves))])
    ddp = dist.DistributedDataParallel(model)
    with ddp.no_sync():
        nerve.functional.cross_entropy(ddp(nerve.tensor(x[halves[0]])), nerve.tensor(y[halves[0]])).backward()
    nerve.functional.cross_entropy(ddp(nerve.tensor(x[halves[1]])), nerve.tensor(y[halves[1]])).backward()
    results["no_sync_gap"] = _gap(model, expected)

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            nerve.manual_seed(0)
            self.net = nn.ModuleDict({"trunk": nn.Linear(6, 4), "a": nn.Linear(4, 3), "b": nn.Linear(4, 3)}).to(
                dtype=nerve.float64)

        def forward(self, t, use_b):
            h = self.net["trunk"](t)
            return self.net["a"](h).sum() + (self.net["b"](h).sum() if use_b else 0.0)

    mine = slice(8 * dist.rank(), 8 * dist.rank() + 8)
    heads = TwoHeads()
    net = heads.net
    local_b = None
    if dist.rank() == 0:
        loss = heads(nerve.tensor(x[mine]), True)
        local_b = [g.numpy() for g in nerve.autograd.grad(loss, list(net["b"].parameters()))]
    reference = dist.broadcast_object(local_b)
    ddp = dist.DistributedDataParallel(heads, find_unused_parameters=True)
    ddp(nerve.tensor(x[mine]), dist.rank() == 0).backward()  # averaged by the end of backward on both ranks
    results["unused_gap"] = max(float(numpy.abs(p.grad.numpy() - r / 2).max())
                                for p, r in zip(net["b"].parameters(), reference))
    strict = dist.DistributedDataParallel(TwoHeads())
    strict(nerve.tensor(x[mine]), False).backward()  # head b unused on every rank: its bucket never starts
    try:
        strict(nerve.tensor(x[mine]), True)
    except RuntimeError as exc:
        results["unused_error"] = str(exc)

    norm = nn.BatchNorm1d(3)
    bn = dist.DistributedDataParallel(norm)
    if dist.rank() == 1:
        norm.running_mean.data += 5.0  # drifted on one rank: the next forward takes rank 0's buffers again
    bn.eval()
    bn(nerve.ones(2, 3))
    results["buffer_after_forward"] = numpy.stack(dist.allgather_object(norm.running_mean.numpy().copy()))

    t = nerve.tensor([float(dist.rank() + 1), 10.0 * (dist.rank() + 1)])
    total, mean, top = t.clone(), t.clone(), t.clone()
    dist.all_reduce(total)
    dist.all_reduce(mean, op=dist.ReduceOp.AVG)
    dist.all_reduce(top, op=dist.ReduceOp.MAX)
    src = nerve.tensor([float(dist.rank())] * 2)
    dist.broadcast(src, src=1)
    gathered = [nerve.zeros(2) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, t)
    results.update(total=total.numpy(), mean=mean.numpy(), top=top.numpy(), src=src.numpy(),
                   gathered=numpy.stack([g.numpy() for g in gathered]))
    dist.barrier()
    dist.destroy_process_group()
    return results


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
    elif mode == "ddp":
        for name in ("sgd", "adam"):
            for dtype in ("float64", "float32"):
                results.update(ddp_loop(name, dtype))
        results.update(ddp_checks())
    elif mode == "overlap":
        results = overlap_checks()
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
