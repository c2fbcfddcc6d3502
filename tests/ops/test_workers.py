"""nerve's worker threads (nerve.ops.workers): parts run at once, results come back in order, errors reach the
caller after every part has finished, sleeping workers wake, and without numba an executor does the same."""
import threading
import time

import numpy as np
import pytest

from nerve.ops import workers


@pytest.fixture(params=["spinning", "executor"])
def mode(request, monkeypatch):
    """Both kinds of workers: numba's spinning ones, and the ThreadPoolExecutor used without numba."""
    if request.param == "spinning":
        pytest.importorskip("numba")
        assert workers._spinner() is not None
    else:
        monkeypatch.setitem(workers._state, "k", None)
    return request.param


def test_parts_run_on_other_threads_at_once_and_return_in_order(mode):
    barrier = threading.Barrier(3, timeout=10)  # only passes if the three parts run at the same time

    def part(a, b):
        barrier.wait()
        return a, b, threading.get_ident()
    out = workers.run(part, [0, 3, 5, 9])
    assert [(a, b) for a, b, _ in out] == [(0, 3), (3, 5), (5, 9)]
    assert out[0][2] == threading.get_ident() and len({t for _, _, t in out}) == 3


@pytest.mark.parametrize("failing", [0, 1])
def test_an_error_is_raised_after_every_part_has_finished(mode, failing):
    finished = []

    def part(a, b):
        if a == failing:
            raise ValueError(f"part {a}")
        time.sleep(0.05)
        finished.append(a)
    with pytest.raises(ValueError, match=f"part {failing}"):
        workers.run(part, [0, 1, 2])
    assert finished == [1 - failing]
    assert workers.run(lambda a, b: b - a, [0, 4, 10]) == [4, 6]  # the workers still serve


def test_a_sleeping_worker_wakes_for_the_next_part(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(workers, "SPIN_SECONDS", 0.0)  # no spinning: the worker sleeps on its Event at once
    monkeypatch.setattr(workers, "TURNS", 10)
    monkeypatch.setattr(workers, "WAKE_GUARD", 60.0)  # once asleep, only the Event can wake it within the join
    workers.run(lambda a, b: None, [0, 1, 2])
    time.sleep(0.02)
    assert workers._workers(1)[0].asleep[0] == 1
    out = []
    caller = threading.Thread(target=lambda: out.append(workers.run(lambda a, b: a * 10 + b, [0, 1, 2])))
    caller.start()
    caller.join(10)
    assert not caller.is_alive() and out == [[1, 12]]


def test_many_small_hand_offs_give_every_result():
    pytest.importorskip("numba")
    data = np.arange(1000.0)
    for i in range(2000):
        parts = workers.run(lambda a, b: data[a:b].sum(), [0, i % 999 + 1, 1000])
        assert parts[0] + parts[1] == data.sum()


def test_a_forked_child_starts_its_own_workers():
    pytest.importorskip("numba")
    import multiprocessing
    workers.run(lambda a, b: None, [0, 1, 2])  # the parent's workers exist
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_sum_in_parts) == 45


def _sum_in_parts():
    return sum(workers.run(lambda a, b: sum(range(a, b)), [0, 5, 10]))


def test_a_part_keeps_nothing_alive_after_it_has_run(mode):
    """A worker must drop the part's closure and result (they hold a kernel's arrays) once the caller has them."""
    import weakref

    class Held:
        pass
    held = Held()
    ref = weakref.ref(held)
    out = workers.run(lambda a, b, h=held: Held(), [0, 1, 2])
    out_ref = weakref.ref(out[1])
    del held, out
    assert ref() is None and out_ref() is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_parts_run_in_blas_on_the_workers(dtype, ta, tb):
    pytest.importorskip("numba")
    if workers.cblas.numpy_gemm() is None:
        pytest.skip("NumPy's BLAS exports no CBLAS GEMM under a known name")
    rng = np.random.default_rng(0)
    m, k, n = 37, 53, 29  # odd sizes; transposed operands are column-major views
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    a, b = (a.T if ta else a), (b.T if tb else b)
    want = a @ b
    tol = 1e-4 if dtype == np.float32 else 1e-12
    def by_rows(out):
        return [(a[i:j], b, out[i:j]) for i, j in ((0, 20), (20, 25), (25, m))]

    def by_columns(out):
        return [(a, b[:, :1], out[:, :1]), (a, b[:, 1:], out[:, 1:])]
    for cut in (by_rows, by_columns):
        out = np.full((m, n), np.nan, dtype)
        jobs = cut(out)
        done = [w.done[0] for w in workers._workers(len(jobs) - 1)]
        assert workers.gemm(jobs)
        assert [w.done[0] for w in workers._workers(len(jobs) - 1)] == [d + 1 for d in done]  # on the workers
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol)


def test_gemm_declines_what_blas_cannot_take():
    pytest.importorskip("numba")
    a, b = np.ones((6, 8)), np.ones((8, 3))
    out = np.full((6, 3), 7.0)
    for jobs in ([(a[:3], b, out[:3]), (a[3:, ::2], b[::2], out[3:])],  # a strided row
                 [(a[:3], b, out[:3]), (a[3:].astype(np.float32), b, out[3:])],  # mixed dtypes
                 [(a[:3], b, out[:3]), (a[3:], b, np.ones((3, 3)).T)],  # out not row-major
                 [(a[:3], b, out[:3]), (a[3:].astype(int), b.astype(int), out[3:].astype(int))]):  # not float
        assert workers.gemm(jobs) is False
        assert (out == 7.0).all()  # nothing computed, not even the caller's part


def test_cblas_layout_reads_strides():
    from nerve.ops import cblas
    a = np.zeros((5, 7), np.float32)
    assert cblas.layout(a) == (cblas.NO_TRANS, 7)
    assert cblas.layout(a[1:4, 2:6]) == (cblas.NO_TRANS, 7)
    assert cblas.layout(a.T) == (cblas.TRANS, 7)
    assert cblas.layout(a[:, :1]) == (cblas.NO_TRANS, 7)
    assert cblas.layout(a[::2]) == (cblas.NO_TRANS, 14)
    assert cblas.layout(a[:, ::2]) is None and cblas.layout(np.zeros(3)) is None


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="no CPU affinity here")
def test_a_worker_on_its_callers_only_cpu_still_runs_its_part():
    """Co-located with its caller, a worker moves off the caller's CPU; with no other CPU allowed it stays and
    runs the part (no loop, no hang), and the affinities are left as they were."""
    import os
    pytest.importorskip("numba")
    worker = workers._workers(1)[0]
    cpus = os.sched_getaffinity(0)
    one = {min(cpus)}
    try:
        os.sched_setaffinity(0, one)
        os.sched_setaffinity(worker.thread.native_id, one)
        a = np.ones((40, 30))
        out = np.empty((40, 5))
        assert workers.gemm([(a[:20], np.ones((30, 5)), out[:20]), (a[20:], np.ones((30, 5)), out[20:])])
        assert (out == 30).all()
        assert workers.run(lambda x, y: y - x, [0, 2, 7]) == [2, 5]
        assert os.sched_getaffinity(worker.thread.native_id) == one
    finally:
        os.sched_setaffinity(worker.thread.native_id, cpus)
        os.sched_setaffinity(0, cpus)


def test_moving_off_a_cpu_keeps_the_affinity():
    import os
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity here")
    cpus = os.sched_getaffinity(0)
    assert workers._move_off(-5) is False  # not one of ours
    moved = workers._move_off(min(cpus))
    assert moved == (len(cpus) > 1) and os.sched_getaffinity(0) == cpus



@pytest.fixture(scope="module")
def doubling():
    """A native part: ``y[a:b] = 2 x[a:b]`` (args: x and y by address, as ``workers.pack`` lays them out), and
    the thread ids it ran on in ``seen[a]``."""
    numba = pytest.importorskip("numba")
    from numba import carray, types

    from nerve.ops import compiled
    address = compiled.address()

    @numba.cfunc(types.void(types.CPointer(types.int64), types.int64, types.int64), nopython=True)
    def part(p, a, b):
        x, y = carray(address(p[0]), (p[1],), np.float64), carray(address(p[2]), (p[3],), np.float64)
        for i in range(a, b):
            y[i] = 2.0 * x[i]
    return part.address


@pytest.mark.parametrize("native_on", [True, False])
def test_native_parts_run_on_the_workers_without_python(doubling, native_on, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(workers, "NATIVE", native_on)
    x, y = np.arange(10.0), np.zeros(10)
    ran = []

    def part(a, b):  # the caller's part, and the workers' where native parts are off
        ran.append((a, b))
        y[a:b] = 2.0 * x[a:b]

    def native(slot, a, b):
        return doubling, workers.pack(x, y), (x, y), None
    assert workers.run(part, [0, 2, 5, 10], native) == [None] * 3
    np.testing.assert_array_equal(y, 2.0 * x)
    assert sorted(ran) == ([(0, 2)] if native_on else [(0, 2), (2, 5), (5, 10)])
    assert all(w.kept is None for w in workers._state["workers"])  # nothing held after the parts


def test_pack_lays_out_ints_vectors_and_matrices():
    m = np.zeros((4, 7), np.float32)[:, :5]
    v = np.zeros(3)
    packed = workers.pack(2, True, v, m)
    assert packed.dtype == np.int64
    assert list(packed) == [2, 1, v.ctypes.data, 3, m.ctypes.data, 4, 5, 7]
    with pytest.raises(ValueError, match=r"workers.pack: an array of shape \(5, 4\)"):
        workers.pack(m.T)


def test_a_native_part_that_cannot_be_prepared_gives_no_part(doubling):
    x, y = np.arange(10.0), np.zeros(10)

    def native(slot, a, b):
        if slot == 2:
            raise MemoryError("no room for slot 2's buffers")
        return doubling, workers.pack(x, y), (x, y), None
    with pytest.raises(MemoryError, match="slot 2"):
        workers.run(lambda a, b: None, [0, 2, 5, 10], native)
    assert workers.run(lambda a, b: (a, b), [0, 2, 5, 10]) == [(0, 2), (2, 5), (5, 10)]  # the workers still serve
    np.testing.assert_array_equal(y, 0.0)  # nothing ran
