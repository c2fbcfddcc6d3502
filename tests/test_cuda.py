"""Every op-table case on the GPU (CuPy): forward values and first-order gradients equal the CPU's.

Runs only where CuPy finds a GPU; elsewhere the whole module is skipped and says why.
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import nerve
import tests.ops
from tests.ops.table import make_inputs

cupy = pytest.importorskip("cupy")
try:
    _GPUS = cupy.cuda.runtime.getDeviceCount()
except Exception:  # noqa: BLE001 - any CUDA runtime error means there is no usable GPU
    _GPUS = 0
if not _GPUS:
    pytest.skip("CuPy is installed but finds no GPU", allow_module_level=True)


def _cases() -> list:
    cases = []
    for info in pkgutil.iter_modules(tests.ops.__path__):
        if info.name.startswith("test_"):
            module = importlib.import_module(f"tests.ops.{info.name}")
            cases += [pytest.param(c, id=f"{info.name[5:]}:{c}") for c in getattr(module, "CASES", [])]
    return cases


def _run(case, arrays, device: str):
    tensors = [nerve.tensor(a, device=device, requires_grad=a.dtype.kind == "f" and case.check_grad)
               for a in arrays]
    out = case.fn(*tensors)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    values = [o.numpy() if isinstance(o, nerve.Tensor) else np.asarray(o) for o in outs]
    diff = [t for t in tensors if t.requires_grad]
    graph = [o for o in outs if isinstance(o, nerve.Tensor) and o.requires_grad]
    grads = []
    if diff and graph:
        vs = [nerve.tensor(np.random.default_rng(1).standard_normal(o.shape), device=device) for o in graph]
        grads = [None if g is None else g.numpy()
                 for g in nerve.grad(graph, diff, vs, allow_unused=True)]
    return values, grads


@pytest.mark.parametrize("case", _cases())
def test_case_on_gpu_matches_cpu(case):
    arrays = make_inputs(case)
    want_values, want_grads = _run(case, arrays, "cpu")
    got_values, got_grads = _run(case, arrays, "cuda")
    for got, want in zip(got_values, want_values):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=f"{case}: forward")
    assert len(got_grads) == len(want_grads)
    for got, want in zip(got_grads, want_grads):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=f"{case}: gradient")
