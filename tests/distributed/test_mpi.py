"""Two ranks under ``mpiexec -n 2`` against one process: the same weights after several steps, checkpoints that
resume on one rank, only rank 0 writing, and the errors (shape disagreement, a stalled rank)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

pytest.importorskip("mpi4py", reason="the MPI tests need the extra nerve[mpi]")
if shutil.which("mpiexec") is None:
    pytest.skip("mpiexec is not on PATH (pip install 'nerve[mpi]' installs mpich's)", allow_module_level=True)

import nerve  # noqa: E402
from nerve import functional as F  # noqa: E402
from tests.distributed import worker  # noqa: E402

WORKER = Path(worker.__file__)
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def mpiexec(ranks: int, mode: str, out: Path, timeout: float = 90, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["mpiexec", "-n", str(ranks), sys.executable, str(WORKER), mode, str(out)],
                          capture_output=True, text=True, timeout=timeout, env={**ENV, **env})


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"mpiexec exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def one_process(optimizer_name: str, dtype: str) -> dict:
    """The reference: one process, global batches of 16 taken in the epoch's permutation of (seed, epoch)."""
    model, x, y = worker.problem(dtype)
    opt = worker.make_optimizer(optimizer_name, model)
    for epoch in range(worker.EPOCHS):
        order = numpy.random.default_rng([worker.SEED, epoch]).permutation(worker.N)
        for k in range(0, worker.N, worker.GLOBAL_BATCH):
            idx = order[k:k + worker.GLOBAL_BATCH]
            opt.zero_grad()
            F.cross_entropy(model(nerve.tensor(x[idx])), nerve.tensor(y[idx])).backward()
            opt.step()
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def equal_run(tmp_path_factory):
    """One ``mpiexec -n 2`` run of the hand-written loop with SGD and Adam in float64 and float32."""
    out = tmp_path_factory.mktemp("equal")
    ok(mpiexec(2, "equal", out))
    return numpy.load(out / "equal.npz")


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_two_ranks_equal_one_process(equal_run, optimizer_name):
    saved = equal_run
    assert int(saved["world"]) == 2
    for dtype, tol in (("float64", 1e-10), ("float32", 1e-5)):
        reference = one_process(optimizer_name, dtype)
        start, _, _ = worker.problem(dtype)
        for name, want in reference.items():
            got = saved[f"{optimizer_name}_{dtype}_{name}"]
            assert got.dtype == want.dtype
            assert numpy.abs(want - start.state_dict()[name].numpy()).max() > 1e-3  # the steps moved it
            numpy.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{optimizer_name} {dtype} {name}")


def test_distributed_data_parallel_equals_one_process_and_has_pytorchs_names(tmp_path):
    ok(mpiexec(2, "ddp", tmp_path))
    r = numpy.load(tmp_path / "ddp.npz")
    for optimizer_name in ("sgd", "adam"):
        for dtype, tol in (("float64", 1e-10), ("float32", 1e-5)):
            for name, want in one_process(optimizer_name, dtype).items():
                numpy.testing.assert_allclose(r[f"ddp_{optimizer_name}_{dtype}_{name}"], want, rtol=0, atol=tol,
                                              err_msg=f"DDP {optimizer_name} {dtype} {name}")
    assert float(r["no_sync_gap"]) < 1e-12 and float(r["unused_gap"]) < 1e-12
    assert "got no gradient in the last backward" in str(r["unused_error"])
    assert "find_unused_parameters=True" in str(r["unused_error"])
    assert int(r["rank"]) == 0 and bool(r["initialized"])
    numpy.testing.assert_array_equal(r["buffer_after_forward"], numpy.zeros((2, 3)))  # both ranks: rank 0's
    numpy.testing.assert_array_equal(r["total"], [3.0, 30.0])
    numpy.testing.assert_array_equal(r["mean"], [1.5, 15.0])
    numpy.testing.assert_array_equal(r["top"], [2.0, 20.0])
    numpy.testing.assert_array_equal(r["src"], [1.0, 1.0])
    numpy.testing.assert_array_equal(r["gathered"], [[1.0, 10.0], [2.0, 20.0]])


def test_fit_checkpoint_from_two_ranks_resumes_on_one_and_only_rank_0_writes(tmp_path):
    two = ok(mpiexec(2, "fit", tmp_path))
    assert (tmp_path / "epoch1.ckpt").exists()
    assert (tmp_path / "log_rank0.csv").exists() and not (tmp_path / "log_rank1.csv").exists()
    assert two.stdout.count("Epoch 1/1") == 1 and two.stdout.count("Epoch 2/2") == 1, two.stdout
    ok(mpiexec(1, "resume", tmp_path))
    fit2 = numpy.load(tmp_path / "fit.npz")
    one = numpy.load(tmp_path / "resume.npz")
    assert int(fit2["world"]) == 2 and int(one["world"]) == 1
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        numpy.testing.assert_allclose(one["resumed_" + name], one["scratch_" + name], rtol=0, atol=1e-10)
        numpy.testing.assert_allclose(fit2[name], one["scratch_" + name], rtol=0, atol=1e-10)
    # the logs are averaged over the ranks: the same per-epoch figures as one process with the global batch
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        numpy.testing.assert_allclose(fit2["history_" + key], one["scratch_history_" + key], rtol=1e-10, err_msg=key)


def test_gradients_are_averaged_during_backward_accumulate_and_allow_unused_parameters(tmp_path):
    ok(mpiexec(2, "overlap", tmp_path))
    r = numpy.load(tmp_path / "overlap.npz")
    assert int(r["buckets"]) >= 3
    # averaged by the end of backward, before step(): what clipping between the two sees
    assert float(r["after_backward_gap"]) < 1e-12
    assert float(r["accumulated_gap"]) < 1e-12
    assert "got 3 gradients before the step (backward_passes_per_step=2)" in str(r["third_pass_error"])
    # a head only rank 0 uses: its gradient counts as zero on rank 1
    assert float(r["unused_head_gap"]) < 1e-12


def test_ranks_that_disagree_on_a_shape_fail_naming_the_parameter(tmp_path):
    proc = mpiexec(2, "mismatch", tmp_path)
    assert proc.returncode != 0
    assert "parameter '0.weight' is (16, 6) float64 on rank 0 but rank 1 has '0.weight' (8, 6)" in proc.stderr


def test_a_stalled_rank_makes_the_others_stop_with_an_error(tmp_path):
    proc = mpiexec(2, "stall", tmp_path, timeout=25, WORKER_TIMEOUT="1.5")
    assert proc.returncode != 0
    assert "DistributedTimeoutError" in proc.stderr and "did not complete within 1.5 s" in proc.stderr


def test_a_dead_rank_ends_the_job(tmp_path):
    """mpiexec (MPICH's hydra) ends every rank when one exits early; none waits for ever."""
    proc = mpiexec(2, "die", tmp_path, timeout=25, WORKER_TIMEOUT="5")
    assert proc.returncode != 0 and not (tmp_path / "survived").exists()
