"""numba's on-disk cache serves nerve's compiled kernels in the next process (nerve.ops.compiled)."""
import os
import subprocess
import sys

import pytest

#: a process that runs every compiled kernel family once: workers' loops, Winograd, the recurrent layers (one fed
#: by an embedding: row_sums), Adam
WORKLOAD = """
import numpy as np
import nerve
from nerve import nn
from nerve.ops import streams, workers
assert workers._kernels() is not None
rng = np.random.default_rng(0)
a = rng.standard_normal((256, 200)).astype(np.float32)
streams.matmul(a, a.T.copy())
x = nerve.tensor(rng.standard_normal((2, 16, 10, 10)).astype(np.float32), requires_grad=True)
nn.Conv2d(16, 16, 3)(x).sum().backward()
nn.Conv2d(16, 8, 3, stride=2, padding=1)(x).sum().backward()
nn.Conv2d(16, 8, 5, padding=2)(x).sum().backward()
s = nerve.tensor(rng.standard_normal((4, 5, 8)).astype(np.float32))
for layer in (nn.LSTM(8, 16, batch_first=True), nn.GRU(8, 16, batch_first=True)):
    opt = nerve.optim.Adam(layer.parameters())
    layer(s)[0].sum().backward()
    opt.step()
emb = nn.Embedding(3, 8)
nn.LSTM(8, 16)(emb(nerve.tensor(rng.integers(0, 3, (6, 2)))))[0].sum().backward()
"""


def test_compiled_kernels_come_from_numbas_cache_in_the_next_process(tmp_path):
    """A kernel's cache key pickles what its closure holds: an intrinsic, C function or kernel there with a fresh
    identity per process (numba's default) recompiles it in every process (seconds) and grows the cache."""
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), NUMBA_DEBUG_CACHE="1", NERVE_NUM_THREADS="2")
    runs = [subprocess.run([sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-3000:]
    assert "data saved" in runs[0].stdout
    again = [line for line in runs[1].stdout.splitlines() if "data saved" in line]
    assert not again, "compiled again in the next process:\n" + "\n".join(again)
