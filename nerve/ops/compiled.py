"""numba, an optional dependency: a module's compiled kernels made once per process (``fused_rnn``, ``winograd``).

numba's on-disk cache (``cache=True``) saves the compile at each start; where it has no writable place for it,
numba raises RuntimeError and the kernels are compiled in memory instead. A kernel's cache key includes what its
closure holds, pickled: an intrinsic or another kernel there must carry a fixed identity (``named``), or every
process compiles anew and adds an entry.
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


def named(fn, name: str):
    """``fn`` (a numba intrinsic or kernel) with the fixed identity ``name`` in place of the fresh uuid it gets in
    each process, so kernels holding it in their closure hit numba's on-disk cache."""
    fn._set_uuid(f"nerve.{name}")
    return fn


def c_function(name: str):
    """A numba intrinsic calling the C library's ``int name(void)`` (``sched_yield``, ``sched_getcpu``), with a
    fixed identity: numba's own ``ExternalFunction`` pickles a type number that changes between processes."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def call(typingctx):
        def codegen(context, builder, signature, args):
            return builder.call(cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []),
                                                               name), [])
        return types.int32(), codegen
    return named(call, f"c.{name}")
