"""The compiled Adam update (nerve.optim.fused) against NumPy's passes: the same bits, every option."""
import numpy as np
import pytest

import nerve
from nerve.optim import adam as adam_module
from nerve.optim import fused

pytest.importorskip("numba")


def _train(monkeypatch, enabled: bool, dtype, **options):
    monkeypatch.setattr(fused, "ENABLED", enabled)
    rng = np.random.default_rng(0)
    p = nerve.tensor(rng.standard_normal((37, 5)).astype(dtype), requires_grad=True)
    q = nerve.tensor(rng.standard_normal(11).astype(dtype), requires_grad=True)
    opt = nerve.optim.Adam([p, q], lr=1e-2, **options)
    for step in range(6):
        opt.zero_grad()
        ((p * p).sum() * (step + 1) + (q ** 3).sum()).backward()
        opt.step()
    return p.data.copy(), q.data.copy(), opt.state[p]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"weight_decay": 0.1, "maximize": True},
                                     {"weight_decay": 0.1, "decoupled_weight_decay": True, "amsgrad": True}])
def test_compiled_adam_gives_numpys_bits(monkeypatch, dtype, options):
    calls = []
    real = fused.adam
    monkeypatch.setattr(fused, "adam", lambda *a: calls.append(1) or real(*a))
    got = _train(monkeypatch, True, dtype, **options)
    assert calls, "the compiled update did not run"
    calls.clear()
    want = _train(monkeypatch, False, dtype, **options)
    assert not calls
    for a, b in zip(got[:2], want[:2]):
        assert a.dtype == dtype and np.array_equal(a, b)
    for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if options.get("amsgrad") else ()):
        assert np.array_equal(got[2][key], want[2][key])


def test_compiled_adam_matches_the_formula_with_nans():
    rng = np.random.default_rng(1)
    w, g, m, v, vm = (rng.standard_normal(9) for _ in range(5))
    v, vm = np.abs(v), np.abs(vm)
    g[3] = np.nan
    want = [a.copy() for a in (w, m, v, vm)]
    work = np.empty(9)
    adam_module._adam_kernel(want[0], g, want[1], want[2], work, want[3], 0.9, 0.99, 1e-8, -0.01)
    fused.adam(w, g, m, v, vm, 0.9, 0.99, 1e-8, -0.01)
    for a, b in zip((w, m, v, vm), want):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(w[3]) and np.isnan(vm[3])


def test_usable_only_for_contiguous_numpy_floats():
    a = np.zeros((4, 4), np.float32)
    assert fused.usable(a, a)
    assert not fused.usable(a, a[:, ::2].copy().T)  # not C-contiguous
    assert not fused.usable(a, a.astype(np.float64))
    assert not fused.usable(a.astype(np.int32))
