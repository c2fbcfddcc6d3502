"""nerve.ops.streams (a kernel's batch in parts on threads, BLAS single-threaded in each), and that training steps
of the kernels that use it (convolution, recurrent layer) hold the same memory from step to step."""
import gc
import threading
import time
import tracemalloc

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.models import SmallCNN
from nerve.ops import streams

ARRAY = np.zeros(1)


@pytest.fixture(autouse=True)
def _blas_threads():
    """These tests are of the BLAS-threads mode (per-site streams); the process may start in nerve's own threads
    (conftest gives that mode back afterwards)."""
    streams.set_threads(None)


def test_parts_cover_the_batch_in_order_on_threads(monkeypatch):
    monkeypatch.setattr(streams, "STREAMS", 3)
    seen = []

    def part(a, b):
        seen.append(threading.get_ident())
        return (a, b)
    assert streams.run(part, 7, 1e9, ARRAY) == [(0, 2), (2, 4), (4, 7)]
    assert threading.get_ident() in seen and len(set(seen)) >= 2  # the caller takes the first part
    assert streams.run(part, 2, 1e9, ARRAY) == [(0, 1), (1, 2)]  # no more parts than the batch has
    assert streams.run(part, 1, 1e9, ARRAY) == [(0, 1)]


def test_one_part_when_not_worth_it(monkeypatch):
    assert streams.count(1, 1e12, ARRAY) == 1
    assert streams.count(8, 1e12, [0.0]) == 1  # not a NumPy array (a device array): one part
    monkeypatch.setattr(streams, "STREAMS", None)
    assert streams.count(8, streams.MIN_FLOPS / 2, ARRAY) == 1
    monkeypatch.setitem(streams._state, "blas", ())  # threadpoolctl missing: BLAS's threads cannot be limited
    assert streams.count(8, 1e12, ARRAY) == 1


def test_nested_call_runs_as_one_part(monkeypatch):
    monkeypatch.setattr(streams, "STREAMS", 2)
    inner = streams.run(lambda a, b: streams.run(lambda c, d: (c, d), 4, 1e9, ARRAY), 2, 1e9, ARRAY)
    assert inner == [[(0, 4)], [(0, 4)]]


def test_blas_single_threaded_inside_and_restored_after(monkeypatch):
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(streams, "STREAMS", 2)
    blas = streams._blas()
    assert blas, "threadpoolctl finds no BLAS library in this process"
    before = [c.num_threads for c in blas]
    inside = streams.run(lambda a, b: [c.num_threads for c in blas], 2, 1e9, ARRAY)
    assert inside == [[1] * len(blas)] * 2
    assert [c.num_threads for c in blas] == before

    def fail(a, b):
        raise ValueError(f"part {a}:{b}")
    with pytest.raises(ValueError, match="part"):
        streams.run(fail, 2, 1e9, ARRAY)
    assert [c.num_threads for c in blas] == before
    assert streams.run(lambda a, b: a, 2, 1e9, ARRAY) == [0, 1]  # the lock was released


def _array_bytes_growth(step, warmup: int = 3, steps: int = 6) -> int:
    """Bytes of NumPy array buffers (tracemalloc's NumPy domain) held after ``steps`` more training steps than
    after the warm-up; Python objects of the libraries' own caches are left out."""
    numpy_only = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]

    def held() -> int:
        gc.collect()
        return sum(t.size for t in tracemalloc.take_snapshot().filter_traces(numpy_only).traces)
    for _ in range(warmup):
        step()
    tracemalloc.start()
    try:
        step()
        first = held()
        for _ in range(steps):
            step()
        return held() - first
    finally:
        tracemalloc.stop()


def training_bytes_growth(net, x, output=lambda y: y) -> int:
    """``_array_bytes_growth`` of Adam training steps of ``net`` on ``x`` (loss: the mean square of
    ``output(net(x))``), seeded."""
    opt = nerve.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        output(net(x)).square().mean().backward()
        opt.step()
    return _array_bytes_growth(step)


@pytest.mark.parametrize("parts", [1, 2])
def test_memory_per_step_does_not_grow(parts, monkeypatch):
    monkeypatch.setattr(streams, "STREAMS", parts)
    rng = np.random.default_rng(0)
    nerve.manual_seed(0)
    cnn = SmallCNN(image_size=12)
    lstm = nn.LSTM(5, 8, batch_first=True)
    opt = nerve.optim.Adam(list(cnn.parameters()) + list(lstm.parameters()), lr=1e-3)
    x = nerve.tensor(rng.random((4, 1, 12, 12), dtype=np.float32))
    y = nerve.tensor(rng.integers(0, 10, 4))
    seq = nerve.tensor(rng.standard_normal((3, 7, 5), dtype=np.float32))

    def step():
        opt.zero_grad()
        out, _ = lstm(seq)
        loss = nn.functional.cross_entropy(cnn(x), y) + out.square().mean()
        loss.backward()
        opt.step()
    assert _array_bytes_growth(step) == 0


def test_each_call_site_takes_the_faster_way_and_retries_the_other(monkeypatch):
    """Auto mode: each way is timed twice, then the faster one runs, the slower once every RETRY calls."""
    monkeypatch.setattr(streams, "STREAMS", None)
    monkeypatch.setattr(streams, "MIN_FLOPS", 0)
    monkeypatch.setattr(streams, "_timings", {})
    monkeypatch.setattr(streams, "count", lambda n, flops, array: 2)  # as with two BLAS threads
    ways = []

    def part(a, b):  # on threads: 2 parts of 2 (slower here, but less than twice), alone: one part of 4
        ways.append(b - a)
        time.sleep(0.015 if b - a == 2 else 0.01)
        return a
    calls = 2 * streams.RETRY
    for _ in range(calls):
        streams.run(part, 4, 1.0, ARRAY, site="test")
    on_threads = ways.count(2) // 2
    assert on_threads == 2 + 2  # timed twice, then retried once every RETRY calls
    assert ways.count(4) == calls - on_threads


def test_a_much_slower_way_is_retried_less_often(monkeypatch):
    monkeypatch.setattr(streams, "_timings", {"s": [[0.4, 0.5], [0.1, 0.2], 4]})  # streams took 4x as long
    chosen = [streams._choose("s") for _ in range(8 * streams.RETRY)]
    assert chosen.count(True) == 2  # every 4 RETRY calls, not every RETRY
    monkeypatch.setattr(streams, "_timings", {"s": [[0.1, 0.2], [5.0, 5.0], 4]})  # alone took 50x as long
    assert [streams._choose("s") for _ in range(8 * streams.RETRY)].count(False) == 0  # every 16 RETRY at most


def test_parts_run_one_after_another_when_the_caller_sums_them(monkeypatch):
    """Without streams, a caller that sums its parts gets the same parts (so the same sums), run in turn."""
    monkeypatch.setattr(streams, "STREAMS", None)
    monkeypatch.setattr(streams, "MIN_FLOPS", 0)
    monkeypatch.setattr(streams, "_timings", {"site": [[1.0, 1.0], [0.0, 0.0], 1]})  # alone is faster
    monkeypatch.setattr(streams, "count", lambda n, flops, array: 3)
    k = 3
    bounds = [6 * i // k for i in range(k + 1)]
    assert streams.run(lambda a, b: (a, b), 6, 1.0, ARRAY, site="site", sums=True) == list(zip(bounds, bounds[1:]))
    assert streams.run(lambda a, b: (a, b), 6, 1.0, ARRAY, site="site") == [(0, 6)]


def _conv_in_child(queue) -> None:
    x, w = nerve.randn(4, 3, 6, 6), nerve.randn(2, 3, 3, 3)
    queue.put(nerve.functional.conv2d(x, w).numpy().shape)


def test_streams_work_in_a_forked_child(monkeypatch):
    """A child forked after the parent's streams ran makes its own threads (the parent's do not exist there)."""
    import multiprocessing
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("this platform cannot fork")
    monkeypatch.setattr(streams, "STREAMS", 2)
    streams.run(lambda a, b: a, 2, 1e9, ARRAY)  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0 and queue.get(timeout=5) == (4, 2, 4, 4)
