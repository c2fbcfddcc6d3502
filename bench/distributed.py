"""Data-parallel scaling over MPI: samples per second on 1 and 2 ranks, efficiency, and what communication costs.

Run: python bench/distributed.py [--ranks 1,2] [--steps 30] [--rounds 3] [--workloads mlp,cnn]
Each round launches ``mpiexec -n R`` for every rank count in turn (the order alternating between rounds, so that
both meet the same machine conditions, as bench/_paired.py does for libraries); each rank trains ``--steps``
Adam steps of its own batch (MLP 784-512-256-10 at 128 per rank, SmallCNN at 64 per rank: weak scaling, the
global batch grows with the ranks) after 3 warm-up steps. Reported: medians over rounds of samples/s (global),
efficiency = samples/s / (ranks x samples/s of 1 rank), the gradient bytes each rank sends per step, the time
of the gradient allreduce and of the rest of the step, and a ring-allreduce model of the cost on a cluster.
OPENBLAS_NUM_THREADS=1 in every rank: R ranks use R cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

WORKLOADS = {"mlp": 128, "cnn": 64}  # per-rank batch


def _model(workload: str):
    from nerve import nn
    from nerve.models import SmallCNN
    if workload == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)), (784,)
    return SmallCNN(), (1, 28, 28)


def worker(workload: str, steps: int) -> None:
    """One rank: time ``steps`` training steps and the allreduce alone; rank 0 prints the slowest rank's figures."""
    import nerve
    import nerve.distributed as dist
    from nerve import functional as F, optim
    dist.init()
    nerve.manual_seed(0)
    model, shape = _model(workload)
    opt = dist.DistributedOptimizer(optim.Adam(model.parameters(), lr=1e-3))
    batch = WORKLOADS[workload]
    rng = np.random.default_rng(dist.rank())
    x = nerve.tensor(rng.normal(size=(batch, *shape)).astype(np.float32))
    y = nerve.tensor(rng.integers(0, 10, batch))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for _ in range(3):
        step()
    dist.barrier()
    comm0, t0 = opt.comm_seconds, time.perf_counter()
    for _ in range(steps):
        step()
    total = time.perf_counter() - t0
    comm = opt.comm_seconds - comm0
    buffers = [bucket.flat for bucket in opt._averager.buckets]
    dist.barrier()
    t1 = time.perf_counter()
    for _ in range(steps):
        dist.comm.allreduce_many(buffers)
    alone = (time.perf_counter() - t1) / steps
    figures = np.array([total, comm, alone])
    slowest = figures.copy()
    if dist.world_size() > 1:
        from mpi4py import MPI
        MPI.COMM_WORLD.Allreduce(figures, slowest, op=MPI.MAX)
    if dist.is_main():
        print("RESULT " + json.dumps({"ranks": dist.world_size(), "samples_per_s": batch * dist.world_size() * steps
                                      / slowest[0], "step_ms": 1e3 * slowest[0] / steps,
                                      "sync_ms": 1e3 * slowest[1] / steps, "allreduce_ms": 1e3 * slowest[2],
                                      "bytes": opt.bytes_per_step}), flush=True)


def launch(ranks: int, workload: str, steps: int) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["mpiexec", "-n", str(ranks), sys.executable, __file__, "--worker", workload,
                           "--steps", str(steps)], capture_output=True, text=True, env=env, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"mpiexec -n {ranks} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-2000:]}")
    return json.loads(lines[0][7:])


def ring_model(nbytes: int, compute_s_per_sample: float) -> list:
    """Ring allreduce, 2 (n-1)/n of the bytes each way plus 2 (n-1) latencies, against the compute of a batch:
    (network, ranks, ms per allreduce, smallest per-rank batch whose compute is 4x the allreduce (80 % efficiency
    without overlap))."""
    rows = []
    for net, bandwidth, latency in (("10 Gb/s Ethernet", 1.25e9, 50e-6), ("100 Gb/s InfiniBand", 12.5e9, 2e-6)):
        for n in (8, 64):
            t = 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency
            rows.append((net, n, 1e3 * t, int(np.ceil(4 * t / compute_s_per_sample))))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="mlp,cnn")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    ranks = [int(r) for r in args.ranks.split(",")]
    if shutil.which("mpiexec") is None:
        raise SystemExit("bench/distributed.py: mpiexec is not on PATH; pip install 'nerve[mpi]' (mpi4py and the "
                         "mpich wheel, which provides mpiexec)")
    print(f"machine: {os.cpu_count()} cores, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"{args.steps} steps x {args.rounds} rounds; 1 BLAS thread per rank")
    print(f"{'workload':9} {'ranks':>5} {'batch/rank':>10} {'samples/s':>10} {'efficiency':>10} {'step ms':>8} "
          f"{'allreduce ms':>12} {'alone ms':>8} {'compute ms':>10} {'MB/step':>8}")
    for workload in args.workloads.split(","):
        runs: dict = {r: [] for r in ranks}
        for k in range(args.rounds):
            for r in (ranks if k % 2 == 0 else ranks[::-1]):
                runs[r].append(launch(r, workload, args.steps))
        base = statistics.median(x["samples_per_s"] for x in runs[ranks[0]]) / ranks[0]
        for r in ranks:
            med = {key: statistics.median(x[key] for x in runs[r]) for key in runs[r][0]}
            print(f"{workload:9} {r:5d} {WORKLOADS[workload]:10d} {med['samples_per_s']:10.0f} "
                  f"{med['samples_per_s'] / (r * base):10.2f} {med['step_ms']:8.1f} {med['sync_ms']:12.2f} "
                  f"{med['allreduce_ms']:8.2f} {med['step_ms'] - med['sync_ms']:10.1f} {med['bytes'] / 1e6:8.2f}")
        one = {key: statistics.median(x[key] for x in runs[ranks[0]]) for key in runs[ranks[0]][0]}
        per_sample = (one["step_ms"] - one["sync_ms"]) / 1e3 / WORKLOADS[workload]
        for net, n, ms, b in ring_model(one["bytes"], per_sample):
            print(f"  model {workload}: {net}, {n} ranks: ring allreduce {ms:.2f} ms per step; 80 % efficiency "
                  f"without overlap needs >= {b} samples per rank")
    print(f"result: distributed scaling measured for {args.workloads} on ranks {args.ranks}")


if __name__ == "__main__":
    main()
