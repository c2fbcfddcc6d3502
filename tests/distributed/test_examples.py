"""Smoke test of bench/distributed.py with the smallest budget: it launches mpiexec for 1 and 2 ranks."""
import shutil

import pytest

from tests.test_scripts import number, run_script

pytest.importorskip("mpi4py", reason="bench/distributed.py needs the extra nerve[mpi]")


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="mpiexec is not on PATH")
def test_bench_distributed_tiny():
    out = run_script("bench/distributed.py", "--steps", "2", "--rounds", "1", "--workloads", "mlp")
    assert "result: distributed scaling measured" in out
    number(r"^mlp\s+1\s+128\s+(\d+)", out, low=1)
    number(r"^mlp\s+2\s+128\s+\d+\s+([\d.]+)", out, low=0.01, high=2.5)
    number(r"^mlp\s+2\s+128(?:\s+\S+){6}\s+([\d.]+)\s*$", out, low=2.14, high=2.15)  # 535,818 weights + 6 flags
