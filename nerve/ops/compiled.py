"""numba, an optional dependency: a module's compiled kernels made once per process (``fused_rnn``, ``winograd``).

numba's on-disk cache (``cache=True``) saves the compile at each start; where it has no writable place for it,
numba raises RuntimeError and the kernels are compiled in memory instead.
"""
from __future__ import annotations


def once(state: dict, build):
    """``build(cache=...)``'s kernels, kept in the module's ``state`` dict; None when numba is not installed."""
    if "k" not in state:
        try:
            state["k"] = build(cache=True)
        except ImportError:  # numba is optional
            state["k"] = None
        except RuntimeError:  # no writable place for numba's on-disk cache: compile in memory at each start
            state["k"] = build(cache=False)
    return state["k"]
