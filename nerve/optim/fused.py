"""Optional compiled optimiser updates (numba, when installed): Adam's whole update in one pass.

Why: NumPy takes nine passes over a parameter's arrays for one Adam update, each a call that reads and writes
memory; one compiled loop reads each array once (784x512 float32: 131 us against 470). It does the same
operations in the same order and dtype as the passes (``adam._adam_kernel``), so the results are theirs bit
for bit; ``ENABLED = False`` forces the passes.
"""
from __future__ import annotations

from nerve import backend
from nerve import ops

#: False: never use the compiled update (NumPy's passes), e.g. to test or time that path
ENABLED = True
_state: dict = {}


def kernels():
    """The compiled updates (a namespace), or None when numba is missing or ``ENABLED`` is False."""
    return ops.compiled.once(_state, _compile) if ENABLED else None


def usable(*arrays) -> bool:
    """Whether the compiled update runs on these arrays: NumPy's (not CuPy's), C-contiguous, one float dtype."""
    dtype = arrays[0].dtype
    return dtype.char in "fd" and all(type(a) is backend.ndarray and a.dtype == dtype and a.flags.c_contiguous
                                      for a in arrays) and kernels() is not None


def _compile(cache: bool):
    from types import SimpleNamespace

    import numpy as np
    from numba import njit

    @njit(nogil=True, cache=cache, error_model="numpy")
    def adam(w, g, m, v, v_max, amsgrad, beta1, keep1, beta2, keep2, eps_c2, scale):
        # m = beta1 m + keep1 g; v = beta2 v + keep2 g g; [v_max = max(v_max, v)]; w += m / (sqrt(v) + eps_c2) scale
        for i in range(w.shape[0]):
            gi = g[i]
            mi = m[i] * beta1 + gi * keep1
            vi = v[i] * beta2 + (gi * gi) * keep2
            m[i] = mi
            v[i] = vi
            if amsgrad:
                vm = v_max[i]
                if not vm >= vi:  # NaN in v wins, as in np.maximum
                    vm = vi
                v_max[i] = vm
                vi = vm
            w[i] += mi / (np.sqrt(vi) + eps_c2) * scale
    return SimpleNamespace(adam=adam)


def adam(w, g, exp_avg, exp_avg_sq, v_max, beta1: float, beta2: float, eps_c2: float, scale: float) -> None:
    """Adam's update in place, as ``adam._adam_kernel`` (``v_max`` None without AMSGrad); check ``usable`` first."""
    real = w.dtype.type
    flat = [a.reshape(-1) for a in (w, g, exp_avg, exp_avg_sq, exp_avg_sq if v_max is None else v_max)]
    kernels().adam(*flat, v_max is not None, real(beta1), real(1 - beta1), real(beta2), real(1 - beta2),
                   real(eps_c2), real(scale))
