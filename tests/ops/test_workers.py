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
