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


def atomics():
    """Numba intrinsics ``load_acquire(flags, i)`` (flags[i] read anew at every call: never hoisted out of a
    spin loop) and ``store_release(flags, i, value)`` (flags[i] = value once every earlier write is visible), for
    int64 flag arrays that threads spin on; with fixed identities (see ``named``)."""
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def load_acquire(typingctx, flags, i):
        def codegen(context, builder, signature, args):
            return builder.load_atomic(_pointer(context, builder, signature, args), "acquire", 8)
        return types.int64(flags, types.intp), codegen

    @intrinsic
    def store_release(typingctx, flags, i, value):
        def codegen(context, builder, signature, args):
            builder.store_atomic(args[2], _pointer(context, builder, signature, args), "release", 8)
            return context.get_dummy_value()
        return types.void(flags, types.intp, types.int64), codegen
    return named(load_acquire, "load_acquire"), named(store_release, "store_release")


def fetch_add():
    """A numba intrinsic ``fetch_add(flags, i, value)``: adds ``value`` to the int64 flags[i] atomically and returns
    what it held (threads taking numbered pieces of work in turn); with a fixed identity (see ``named``)."""
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def add(typingctx, flags, i, value):
        def codegen(context, builder, signature, args):
            return builder.atomic_rmw("add", _pointer(context, builder, signature, args), args[2], "seq_cst")
        return types.int64(flags, types.intp, types.int64), codegen
    return named(add, "fetch_add")


def address():
    """A numba intrinsic ``address(a)``: the int64 address ``a`` as a void pointer, for ``numba.carray(address(a),
    shape, dtype)`` in a ``cfunc`` that gets its arrays by address (``nerve.ops.workers``' native parts)."""
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def as_pointer(typingctx, value):
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(types.voidptr))
        return types.voidptr(types.int64), codegen
    return named(as_pointer, "address")


def _pointer(context, builder, signature, args):
    """The address of ``args[0][args[1]]`` in an intrinsic's code."""
    from numba.core import cgutils
    ary = context.make_array(signature.args[0])(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1]])
