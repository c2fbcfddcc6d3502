"""Persistent hidden-split LSTM loops (float32, nerve's own threads, numba and SciPy's BLAS): each of k threads
owns a slice of the hidden units for the whole sequence (Diamos et al. 2016, "Persistent RNNs").

Why: cut by batch, every thread streams the whole W_hh (1 MiB in float32 at hidden 256) through its core at
every step, which does not stay in a 1 MiB L2 next to the step's other arrays. Cut by hidden units, a thread
packs once per call the rows of W_hh of its units' four gates (forward) or its units' columns of W_hh
(backward), a block of 1/k of the weights that stays in its core's cache for all the steps, and each step's
GEMM has the whole batch. The threads meet at a spin barrier once per step (the next step needs the whole
state): forward, each thread makes its units' gates, cell and output, then waits; backward, each makes its
units' gate gradients, waits, then its units' columns of dh_{t-1} = da W_hh.

Each thread's whole loop is one nogil compiled function (numba; its np.dot calls sgemm from SciPy's BLAS,
single-threaded under ``streams.set_threads``). The element-wise work is that of
``fused_rnn.lstm_cell_out``/``lstm_back`` with the float32 tanh of ``fused_rnn`` for every activation. A part
that waits longer than ``WAIT_SECONDS`` (its partner never came) raises instead of hanging; a part that fails
tells the others, which stop too.
"""
from __future__ import annotations

import time

from nerve import backend
from nerve.backend import xp
from nerve.ops import compiled, fused_rnn, streams

#: True: use these loops where they apply (and ``choose`` picks them). Off by default, as PyTorch's
#: ``cudnn.benchmark``: their float32 results differ from the batch-split loops' within round-off (their gates take
#: fused_rnn's tanh, the batch-split loops NumPy's), so a timing choice between the two would make a seeded run's
#: results depend on the machine's load; and they gain ~3% of an LSTM training step here (bench/rnn.py)
ENABLED = False
#: seconds a part waits at a barrier without its partners moving before it gives up (RuntimeError)
WAIT_SECONDS = 60.0
#: spin turns (each yields the core) between two looks at the clock from Python
TURNS = 200000
#: True: each shape times both loops (this module's and recurrent.py's batch-split ones) and keeps the faster
#: (measured: faster at batch 8-32 with hidden 64 or 256, slower at hidden 128 or 512 and at batch 128); False: these
#: loops wherever they apply (tests)
CHOOSE = True
#: calls of a shape between two timings of its slower loops (the machine's load changes)
RETRY = 16
#: timings kept of each way (its best counts)
SAMPLES = 3
#: shapes remembered at most; beyond it the timings start again
MAX_SITES = 1024
#: int64 slots between two threads' step counters (one cache line each); the last slot is the abort flag
_PAD = 8
_state: dict = {}
_timings: dict = {}


def kernels():
    """The compiled loops (a namespace), or None (numba or SciPy's BLAS missing, or fused_rnn disabled)."""
    if fused_rnn.kernels() is None:
        return None
    return compiled.once(_state, _build)


def parts(x, hidden: int, mask, work: float) -> int:
    """How many threads run the persistent loops of this layer: 0 (use the batch-split loops) unless float32 NumPy
    arrays without a mask under nerve's own threads, ``ENABLED``, the kernels available and the work worth a split."""
    if not ENABLED or not streams.get_threads() or mask is not None or type(x) is not backend.ndarray \
            or x.dtype != xp.float32:
        return 0
    k = streams.count(hidden, work, x)
    return k if k > 1 and kernels() is not None else 0


def choose(site) -> bool:
    """Whether this call of ``site`` (a layer's shape) runs these loops: with ``CHOOSE``, the two ways in turn
    SAMPLES times each, then the faster (best of its last SAMPLES), the slower timed again every RETRY calls (as
    ``streams`` chooses its streams per call site)."""
    if not CHOOSE:
        return True
    if site not in _timings and len(_timings) >= MAX_SITES:
        _timings.clear()
    t = _timings.setdefault(site, [[], [], 0])  # seconds of these loops, of the batch-split ones, calls
    t[2] += 1
    if len(t[1]) < SAMPLES:  # the first calls alternate (the first of a process are slower: both ways warm up)
        return len(t[0]) <= len(t[1])
    return (min(t[0]) <= min(t[1])) != (t[2] % RETRY == 0)


def record(site, persistent: bool, start: float) -> None:
    """Keeps the time since ``start`` (perf_counter) of ``site``'s loops, these or the batch-split ones."""
    if CHOOSE and site in _timings:
        times = _timings[site][0 if persistent else 1]
        times.append(time.perf_counter() - start)
        del times[:-SAMPLES]


def _build(cache: bool):
    import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot calls its sgemm: loaded now, so it is limited too)
    if streams.get_threads():  # set_threads limits the BLAS libraries loaded so far: SciPy's too
        streams.set_threads(streams.get_threads())
    k = _compile(cache)
    # a first call of each compiles now (a platform without sched_yield fails here, not inside a thread)
    f = xp.float32
    one = xp.zeros((1, 1, 1), f)
    k.forward(0, 0, 1, False, xp.zeros((1, 1, 4), f), xp.zeros(4, f), xp.zeros((4, 1), f), one, one.copy(),
              one.copy(), one.copy(), False, xp.zeros((1, 1), f), xp.zeros((1, 1), f), xp.zeros((4, 1), f),
              xp.zeros((1, 4), f),
              xp.zeros(_PAD + 1, dtype=xp.int64), 0, 1, 1)
    k.backward(0, 0, 1, False, xp.zeros((1, 1, 4), f), one, one.copy(), xp.zeros((1, 1), f), one.copy(), False,
               xp.zeros((1, 1), f), xp.zeros((1, 1), f), xp.zeros((1, 1), f), xp.zeros((1, 1, 4), f),
               xp.zeros((1, 4), f), xp.zeros((1, 4), f), xp.zeros((1, 2, 1, 1), f), xp.zeros(_PAD + 1, dtype=xp.int64),
               0, 1, 1)
    return k


def _compile(cache: bool):
    from types import SimpleNamespace

    from numba import njit
    yield_core = compiled.c_function("sched_yield")
    load_acquire, store_release = compiled.atomics()
    (p0, p1, p2, p3, p4, p5, p6), (q0, q1, q2, q3) = fused_rnn._TANH
    jit = njit(nogil=True, cache=cache, error_model="numpy")

    @njit(inline="always", error_model="numpy")
    def tanh32(x):  # fused_rnn's float32 tanh (within 0.61 ulp), rounded to float32
        v = min(max(float(x), -9.0), 9.0) if x == x else float(x)
        s = v * v
        return xp.float32(v * ((((((p6 * s + p5) * s + p4) * s + p3) * s + p2) * s + p1) * s + p0) / (
            ((q3 * s + q2) * s + q1) * s + q0))

    @njit(inline="always")
    def transpose(a, out):
        """out = a.T in 8 x 8 tiles (rows read as eight named views: LLVM keeps them in registers), then the
        edges; twice as fast as NumPy's copy of a.T for the (512, 32) gates of a step."""
        J, B = a.shape
        J8, B8 = J - J % 8, B - B % 8
        for b0 in range(0, B8, 8):
            for j0 in range(0, J8, 8):
                r0, r1, r2, r3 = a[j0, b0:b0 + 8], a[j0 + 1, b0:b0 + 8], a[j0 + 2, b0:b0 + 8], a[j0 + 3, b0:b0 + 8]
                r4, r5, r6, r7 = a[j0 + 4, b0:b0 + 8], a[j0 + 5, b0:b0 + 8], a[j0 + 6, b0:b0 + 8], a[j0 + 7, b0:b0 + 8]
                for b in range(8):
                    w = out[b0 + b, j0:j0 + 8]
                    w[0], w[1], w[2], w[3] = r0[b], r1[b], r2[b], r3[b]
                    w[4], w[5], w[6], w[7] = r4[b], r5[b], r6[b], r7[b]
        for b in range(B):
            for j in range(J8 if b < B8 else 0, J):
                out[b, j] = a[j, b]

    @njit(inline="always")
    def meet(flags, me, k, target, turns):
        """True once every other part's counter reaches target; False after ``turns`` or when one aborted."""
        abort = flags.shape[0] - 1
        for _ in range(turns):
            if load_acquire(flags, abort):
                return False
            ready = True
            for j in range(k):
                if j != me and load_acquire(flags, j * _PAD) < target:
                    ready = False
                    break
            if ready:
                return True
            yield_core()
        return False

    for fn, name in ((tanh32, "tanh32"), (transpose, "transpose"), (meet, "meet")):
        compiled.named(fn, f"persistent_rnn.{name}")  # held by the loops' closures: fixed identities keep them cached

    @jit
    def forward(p, u0, u1, reverse, acts, bias, wp, hp, cs, tc, out3, batch_first, c0, last, gt, tmp, flags, me, k,
                turns):
        """Steps p.. of the forward for the units [u0, u1) (see the module docstring); returns the step it stopped
        at (its barrier not passed) or T when done. acts (T, B, 4H): the input projections (halved rows for i, f,
        o), made the gates' activations; wp (4U, H): the part's rows of the halved W_hh; hp (T, B, H): the state
        before each step (hp[first step] given), cs, tc: the cells and their tanh; out3: the output in the
        input's layout; last: the state after the last step; gt (4U, B), tmp (B, 4U): work arrays."""
        T, B, H = hp.shape
        U = u1 - u0
        half = xp.float32(0.5)
        while p < T:
            t = T - 1 - p if reverse else p
            if load_acquire(flags, me * _PAD) <= p:  # not computed yet (else: resumed at its barrier)
                # the gates (4U, B) = wp h^T: BLAS runs this orientation faster than h wp^T for a small batch
                xp.dot(wp, hp[t].T, gt)
                transpose(gt, tmp)
                tn = T - 2 - p if reverse else p + 1
                for b in range(B):
                    ar, tr = acts[t, b], tmp[b]
                    ai, af, ag, ao = ar[u0:u1], ar[H + u0:H + u1], ar[2 * H + u0:2 * H + u1], ar[3 * H + u0:3 * H + u1]
                    bi, bf, bg, bo = bias[u0:u1], bias[H + u0:H + u1], bias[2 * H + u0:2 * H + u1], bias[3 * H + u0:]
                    ti, tf, tg, to = tr[:U], tr[U:2 * U], tr[2 * U:3 * U], tr[3 * U:]
                    cp = (c0[b] if p == 0 else cs[T - p if reverse else p - 1, b])[u0:u1]
                    cn, tcr = cs[t, b, u0:u1], tc[t, b, u0:u1]
                    hn = (last[b] if p == T - 1 else hp[tn, b])[u0:u1]
                    ho = (out3[b, t] if batch_first else out3[t, b])[u0:u1]
                    for u in range(U):
                        i = tanh32((ai[u] + bi[u]) + ti[u]) * half + half
                        f = tanh32((af[u] + bf[u]) + tf[u]) * half + half
                        g = tanh32((ag[u] + bg[u]) + tg[u])
                        o = tanh32((ao[u] + bo[u]) + to[u]) * half + half
                        ai[u], af[u], ag[u], ao[u] = i, f, g, o
                        cv = f * cp[u] + i * g
                        cn[u] = cv
                        tv = tanh32(cv)
                        tcr[u] = tv
                        hv = o * tv
                        ho[u] = hv
                        hn[u] = hv
                store_release(flags, me * _PAD, p + 1)
            if p < T - 1 and not meet(flags, me, k, p + 1, turns):
                return p
            p += 1
        return T

    @njit(inline="always")
    def gather(parts, slot, u0, u1, dht, dh):
        """dh (B, U) = the sum over the parts of their products' rows [u0, u1) (parts (k, 2, H, B), in slot)."""
        for u in range(u1 - u0):
            row = dht[u]
            row[:] = parts[0, slot, u0 + u]
            for j in range(1, parts.shape[0]):
                src = parts[j, slot, u0 + u]
                for b in range(row.shape[0]):
                    row[b] += src[b]
        transpose(dht, dh)

    compiled.named(gather, "persistent_rnn.gather")

    @jit
    def backward(q, u0, u1, reverse, acts, tc, cs, c0, d3, batch_first, dh, dht, dc, dg, da, wo, parts, flags, me, k,
                 turns):
        """Steps back q.. (q counts from the last step) for the units [u0, u1); returns where it stopped (its
        barrier not passed) or T when done. Per step: dh (B, U) of the part's units, the sum of every part's
        product of the step before; the gates' gradients of its units (into dg (T, B, 4H) and da (B, 4U)) from
        dh + the output's gradient (d3, in the input's layout) and dc (B, U); then its share of dh_{t-1}, da W_own
        (wo (H, 4U): the part's rows of W_hh, transposed), into parts[me, q % 2] (H, B) (two slots: a part may
        write the next step's while another still reads this one's); then the barrier. dht (U, B): work."""
        T, B, H4 = dg.shape
        H = H4 // 4
        U = u1 - u0
        one = xp.float32(1.0)
        while q < T:
            p = T - 1 - q  # the step's place in the forward order
            t = T - 1 - p if reverse else p
            if load_acquire(flags, me * _PAD) <= q:
                if q:
                    gather(parts, (q - 1) % 2, u0, u1, dht, dh)
                for b in range(B):
                    ar, dar, dab = acts[t, b], dg[t, b], da[b]
                    ai, af, ag, ao = ar[u0:u1], ar[H + u0:H + u1], ar[2 * H + u0:2 * H + u1], ar[3 * H + u0:3 * H + u1]
                    di, df, dgg, do = dar[u0:u1], dar[H + u0:H + u1], dar[2 * H + u0:2 * H + u1], dar[3 * H + u0:]
                    ei, ef, eg, eo = dab[:U], dab[U:2 * U], dab[2 * U:3 * U], dab[3 * U:]
                    cp = (c0[b] if p == 0 else cs[T - p if reverse else p - 1, b])[u0:u1]
                    tcr = tc[t, b, u0:u1]
                    dor = (d3[b, t] if batch_first else d3[t, b])[u0:u1]
                    dhr, dcr = dh[b], dc[b]
                    for u in range(U):
                        i, f, g, o = ai[u], af[u], ag[u], ao[u]
                        tv = tcr[u]
                        d = dhr[u] + dor[u]
                        dcv = dcr[u] + (one - tv * tv) * o * d
                        vi = dcv * g * ((one - i) * i)
                        vf = dcv * cp[u] * ((one - f) * f)
                        vg = dcv * i * (one - g * g)
                        vo = d * tv * ((one - o) * o)
                        di[u], df[u], dgg[u], do[u] = vi, vf, vg, vo
                        ei[u], ef[u], eg[u], eo[u] = vi, vf, vg, vo
                        dcr[u] = dcv * f
                xp.dot(wo, da.T, parts[me, q % 2])  # (H, B): BLAS's faster orientation
                store_release(flags, me * _PAD, q + 1)
            if not meet(flags, me, k, q + 1, turns):
                return q
            q += 1
        gather(parts, (T - 1) % 2, u0, u1, dht, dh)
        return T

    return SimpleNamespace(forward=forward, backward=backward)


def _loop(flags, me: int, step, T: int) -> None:
    """Run ``step(p)`` (a part's compiled loop from p) until it returns T; between calls (a barrier not reached in
    TURNS turns) check that a partner moved within WAIT_SECONDS and none aborted. A failing part aborts the others."""
    abort = flags.shape[0] - 1
    try:
        p, since, seen = 0, time.perf_counter(), None
        while True:
            p = step(p)
            if p >= T:
                return
            if flags[abort]:
                raise RuntimeError("persistent_rnn: another part of the loop failed")
            moved = tuple(flags[::_PAD][:-1])
            if moved != seen:
                seen, since = moved, time.perf_counter()
            elif time.perf_counter() - since > WAIT_SECONDS:
                raise RuntimeError(f"persistent_rnn: part {me} waited {WAIT_SECONDS} s at step {p} for the others "
                                   f"(counters {moved})")
    except BaseException:
        flags[abort] = 1
        raise


def lstm_forward(acts, bias, w_hh, rows, hp, cs, tc, out3, batch_first: bool, c0, reverse: bool):
    """The float32 LSTM forward loop cut by hidden units into k parts on nerve's threads (hp[first step] holds h0);
    returns (h_n, c_n)."""
    kern = kernels()
    T, B, H = hp.shape
    work = 2.0 * T * B * w_hh.size
    k = streams.count(H, work, hp)  # the parts streams.run makes (or one, when it runs them one by one)
    last = xp.empty((B, H), dtype=hp.dtype)
    flags = xp.zeros(k * _PAD + 1, dtype=xp.int64)
    w4 = w_hh.reshape(4, H, H)
    r4 = rows.reshape(4, H, 1)

    def part(u0: int, u1: int) -> None:
        me, n = (0, 1) if (u0, u1) == (0, H) else (_index(u0, H, k), k)  # streams may run one part alone
        wp = (w4[:, u0:u1] * r4[:, u0:u1]).reshape(4 * (u1 - u0), H)  # the part's halved rows, contiguous
        gt, tmp = xp.empty((4 * (u1 - u0), B), dtype=hp.dtype), xp.empty((B, 4 * (u1 - u0)), dtype=hp.dtype)
        _loop(flags, me, lambda p: kern.forward(p, u0, u1, reverse, acts, bias, wp, hp, cs, tc, out3, batch_first,
                                                c0, last, gt, tmp, flags, me, n, TURNS), T)
    streams.run(part, H, work, hp)
    return last, cs[0 if reverse else T - 1].copy()


def lstm_backward(acts, tc, cs, c0, d3, batch_first: bool, dh, dc, dg, w_hh, reverse: bool) -> None:
    """The float32 LSTM backward loop cut by hidden units into k parts: fills dg (T, B, 4H) and leaves in dh, dc
    (B, H) the gradients of the initial state."""
    kern = kernels()
    T, B, H4 = dg.shape
    H = H4 // 4
    work = 2.0 * T * B * w_hh.size
    k = streams.count(H, work, dh)
    flags = xp.zeros(k * _PAD + 1, dtype=xp.int64)
    shares = xp.empty((k, 2, H, B), dtype=dg.dtype)  # each part's product da W_own^T of the last two steps
    w4 = w_hh.reshape(4, H, H)

    def part(u0: int, u1: int) -> None:
        me, n = (0, 1) if (u0, u1) == (0, H) else (_index(u0, H, k), k)
        U = u1 - u0
        wo = xp.ascontiguousarray(w4[:, u0:u1].reshape(4 * U, H).T)  # the part's rows of W_hh, transposed
        dhp, dcp = xp.ascontiguousarray(dh[:, u0:u1]), xp.ascontiguousarray(dc[:, u0:u1])  # the part's own
        dht, da = xp.empty((U, B), dtype=dh.dtype), xp.empty((B, 4 * U), dtype=dh.dtype)
        _loop(flags, me, lambda q: kern.backward(q, u0, u1, reverse, acts, tc, cs, c0, d3, batch_first, dhp, dht, dcp,
                                                 dg, da, wo, shares[:n], flags, me, n, TURNS), T)
        dh[:, u0:u1], dc[:, u0:u1] = dhp, dcp
    streams.run(part, H, work, dh)


def _index(u0: int, n: int, k: int) -> int:
    """The index of the part starting at u0 among streams' k parts of n (bounds n i // k)."""
    return next(i for i in range(k) if n * i // k == u0)
