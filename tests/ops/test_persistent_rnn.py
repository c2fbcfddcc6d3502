"""nerve.ops.persistent_rnn (the float32 LSTM loops cut by hidden units, one spin barrier per step): against the
batch-split loops and the float64 layer, on odd sizes and 1-3 parts; the barrier many times (no hang), a failing or
missing part (an error, never a hang), the conditions of use, numba missing, memory per training step."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.ops import fused_rnn, persistent_rnn, streams
from nerve.ops.recurrent import RecurrentLayer

pytestmark = pytest.mark.skipif(persistent_rnn.kernels() is None, reason="numba (or SciPy's BLAS) not installed")


@pytest.fixture
def own_threads(monkeypatch):
    """nerve's own threads (2) for the test, the previous mode afterwards, the persistent loops wherever they apply;
    ``streams.STREAMS`` sets the parts."""
    before = streams.get_threads()
    streams.set_threads(2)
    monkeypatch.setattr(persistent_rnn, "ENABLED", True)
    monkeypatch.setattr(persistent_rnn, "CHOOSE", False)  # these loops wherever they apply (no timing)
    yield
    streams.set_threads(before or None)


def _layer(B, T, E, H, batch_first, reverse, dtype=np.float32, seed=0):
    """The LSTM node's output and the gradients of all its inputs (random h0, c0, biases and output gradient)."""
    rng = np.random.default_rng(seed)
    shape = (B, T, E) if batch_first else (T, B, E)
    x = nerve.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    w = [nerve.tensor(rng.uniform(-0.4, 0.4, s).astype(dtype), requires_grad=True)
         for s in ((4 * H, E), (4 * H, H), (4 * H,), (4 * H,))]
    h0, c0 = (nerve.tensor(rng.standard_normal((B, H)).astype(dtype), requires_grad=True) for _ in range(2))
    out = RecurrentLayer.apply(x, *w, h0, c0, None, "lstm", reverse, batch_first)
    out.backward(nerve.tensor(rng.standard_normal(out.shape).astype(dtype)))
    return [out.data] + [t.grad.data for t in (x, *w, h0, c0)]


def _spy(monkeypatch):
    """Counts the calls of the persistent loops (so a test knows they ran)."""
    calls = {"forward": 0, "backward": 0}
    for name, key in (("lstm_forward", "forward"), ("lstm_backward", "backward")):
        fn = getattr(persistent_rnn, name)

        def counted(*args, _fn=fn, _key=key):
            calls[_key] += 1
            return _fn(*args)
        monkeypatch.setattr(persistent_rnn, name, counted)
    return calls


CASES = [(32, 9, 16, 40, True, False), (3, 5, 7, 33, False, True), (1, 1, 4, 5, True, True),
         (4, 9, 6, 3, False, False), (5, 7, 3, 17, True, False), (2, 3, 2, 8, False, True)]


@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("case", CASES)
def test_matches_batch_split_loops_and_float64(own_threads, monkeypatch, case, parts):
    """Output and every input gradient equal the batch-split loops' within float32 round-off, and the float64
    layer's (the NumPy path, an independent reference) within float32 precision; H odd, batch 1, one step."""
    monkeypatch.setattr(streams, "STREAMS", parts)
    calls = _spy(monkeypatch)
    got = _layer(*case)
    assert calls == {"forward": 1, "backward": 1}
    monkeypatch.setattr(persistent_rnn, "ENABLED", False)
    split = _layer(*case)
    ref = _layer(*case, dtype=np.float64)
    assert calls == {"forward": 1, "backward": 1}
    for a, b, c in zip(got, split, ref):
        scale = np.abs(c).max() + 1e-30
        assert np.abs(a - b).max() <= 3e-6 * scale
        assert np.abs(a - c).max() <= 3e-6 * scale


def test_one_part_when_streams_runs_them_in_turn(own_threads, monkeypatch):
    """When streams runs the parts one after the other (its lock held by another call), the loop runs as one part over
    all the units, with no barrier to wait at."""
    monkeypatch.setattr(streams, "STREAMS", 2)
    calls = _spy(monkeypatch)
    assert streams._LOCK.acquire(blocking=False)
    try:
        got = _layer(3, 4, 5, 6, True, False)
    finally:
        streams._LOCK.release()
    assert calls == {"forward": 1, "backward": 1}
    monkeypatch.setattr(persistent_rnn, "ENABLED", False)
    for a, b in zip(got, _layer(3, 4, 5, 6, True, False)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_barrier_many_times_without_hanging(own_threads, monkeypatch):
    """200 forward+backward calls of 2 and 3 parts meeting at 40 barriers each finish (guard: 60 s), with the same
    result every time."""
    monkeypatch.setattr(streams, "STREAMS", 2)
    first = _layer(4, 20, 3, 10, False, False)
    results, errors = [], []

    def work():
        try:
            for i in range(200):
                monkeypatch.setattr(streams, "STREAMS", 2 + i % 2)
                results.append(_layer(4, 20, 3, 10, False, False)[0])
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "persistent_rnn: the loops hung"
    assert not errors and len(results) == 200
    for r in results:
        np.testing.assert_allclose(r, first[0], rtol=1e-6, atol=1e-7)


def test_a_failing_part_stops_the_others(own_threads, monkeypatch):
    """A part that fails before its loop (here the second) makes the part waiting for it raise instead of hanging."""
    monkeypatch.setattr(streams, "STREAMS", 2)
    kern = persistent_rnn.kernels()

    class Broken:
        backward = kern.backward

        @staticmethod
        def forward(p, u0, *args):
            if u0:
                raise MemoryError("persistent_rnn test: part 2 fails")
            return kern.forward(p, u0, *args)
    monkeypatch.setattr(persistent_rnn, "kernels", lambda: Broken)
    done = []

    def work():
        with pytest.raises((MemoryError, RuntimeError)):
            _layer(4, 30, 3, 10, True, False)
        done.append(True)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(60)
    assert done == [True]


def test_a_part_that_never_comes_times_out(monkeypatch):
    """A part whose partners never move gives up after WAIT_SECONDS (RuntimeError naming the step and counters) and
    sets the abort flag for the others."""
    monkeypatch.setattr(persistent_rnn, "WAIT_SECONDS", 0.05)
    flags = np.zeros(2 * persistent_rnn._PAD + 1, dtype=np.int64)
    with pytest.raises(RuntimeError, match="part 0 waited 0.05 s at step 3"):
        persistent_rnn._loop(flags, 0, lambda p: 3, 10)
    assert flags[-1] == 1


def test_conditions_of_use(own_threads, monkeypatch):
    """Only float32 NumPy arrays, no mask, nerve's own threads, the kernels available and more than one part."""
    monkeypatch.setattr(streams, "STREAMS", 2)
    x = np.zeros((4, 3), np.float32)
    assert persistent_rnn.parts(x, 8, None, 1e9) == 2
    assert persistent_rnn.parts(x.astype(np.float64), 8, None, 1e9) == 0
    assert persistent_rnn.parts(x, 8, np.ones((2, 2), bool), 1e9) == 0
    assert persistent_rnn.parts(x, 1, None, 1e9) == 0  # one hidden unit: one part
    monkeypatch.setattr(streams, "STREAMS", 1)
    assert persistent_rnn.parts(x, 8, None, 1e9) == 0
    monkeypatch.setattr(streams, "STREAMS", 2)
    monkeypatch.setattr(fused_rnn, "ENABLED", False)  # NumPy's passes forced: no compiled loops either
    assert persistent_rnn.parts(x, 8, None, 1e9) == 0
    monkeypatch.setattr(fused_rnn, "ENABLED", True)
    monkeypatch.setattr(streams, "THREADS", 0)  # BLAS's threads
    assert persistent_rnn.parts(x, 8, None, 1e9) == 0


def test_numba_missing_falls_back(own_threads, monkeypatch):
    """Without numba (the kernels None) the batch-split loops run and give the same result."""
    monkeypatch.setattr(streams, "STREAMS", 2)
    got = _layer(3, 4, 5, 6, False, True)
    monkeypatch.setattr(persistent_rnn, "_state", {"k": None})
    calls = _spy(monkeypatch)
    assert persistent_rnn.kernels() is None
    for a, b in zip(got, _layer(3, 4, 5, 6, False, True)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert calls == {"forward": 0, "backward": 0}


def test_memory_per_step_does_not_grow(own_threads, monkeypatch):
    """NumPy array bytes held after 6 more LSTM training steps on the persistent loops equal those after the first."""
    from tests.ops.test_streams import training_bytes_growth
    monkeypatch.setattr(streams, "STREAMS", 2)
    calls = _spy(monkeypatch)
    nerve.manual_seed(0)
    rnn = nn.LSTM(5, 8, batch_first=True)
    x = nerve.tensor(np.random.default_rng(0).standard_normal((3, 7, 5)).astype(np.float32))
    assert training_bytes_growth(rnn, x, output=lambda y: y[0]) == 0
    assert calls["forward"] >= 7 and calls["backward"] >= 7


def test_kernels_come_from_numbas_cache_in_the_next_process(tmp_path):
    """The loops' closures hold only kernels and intrinsics with fixed identities (nerve.ops.compiled.named): the next
    process loads them from numba's on-disk cache instead of compiling again (seconds)."""
    import os
    import subprocess
    import sys
    code = "from nerve.ops import persistent_rnn; assert persistent_rnn.kernels() is not None"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), NUMBA_DEBUG_CACHE="1")
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-3000:]
    assert "persistent_rnn" in runs[0].stdout and "data saved" in runs[0].stdout
    again = [line for line in runs[1].stdout.splitlines() if "data saved" in line]
    assert not again, "compiled again in the next process:\n" + "\n".join(again)


def test_each_shape_keeps_the_faster_loops(monkeypatch):
    """With CHOOSE, a shape runs the two ways in turn SAMPLES (3) times each, then the faster one, the slower again
    every RETRY calls; a new shape starts its own timings."""
    import time
    monkeypatch.setattr(persistent_rnn, "CHOOSE", True)
    monkeypatch.setattr(persistent_rnn, "_timings", {})
    seconds = {True: 0.002, False: 0.003}  # the persistent loops faster
    ways = []
    for _ in range(2 * persistent_rnn.RETRY + 6):
        way = persistent_rnn.choose("a")
        ways.append(way)
        persistent_rnn.record("a", way, time.perf_counter() - seconds[way])
    assert ways[:6] == [True, False] * 3
    assert ways.count(False) == 5  # the three first and one retry each RETRY calls
    assert ways[persistent_rnn.RETRY - 1] is False and ways[2 * persistent_rnn.RETRY - 1] is False
    seconds = {True: 0.004, False: 0.003}  # now slower: the retry's time replaces the older one, and it switches
    for _ in range(3 * persistent_rnn.RETRY):
        way = persistent_rnn.choose("a")
        persistent_rnn.record("a", way, time.perf_counter() - seconds[way])
    assert persistent_rnn.choose("a") is False or persistent_rnn.choose("a") is False
    assert persistent_rnn.choose("b") is True  # a new shape: its own timings


def test_off_by_default():
    """Opt-in (its results differ from the batch-split loops' within round-off, so a seeded run stays the same)."""
    assert persistent_rnn.ENABLED is False
    assert persistent_rnn.parts(np.ones((2, 3, 4), np.float32), 512, None, 1e12) == 0


def test_the_layer_times_both_loops(monkeypatch):
    """Through the layer with CHOOSE on: the first calls of a shape alternate the persistent and the batch-split loops
    (forward and backward each), all with the same results within round-off."""
    before = streams.get_threads()
    streams.set_threads(2)
    try:
        monkeypatch.setattr(streams, "STREAMS", 2)
        monkeypatch.setattr(persistent_rnn, "ENABLED", True)
        monkeypatch.setattr(persistent_rnn, "CHOOSE", True)
        monkeypatch.setattr(persistent_rnn, "_timings", {})
        calls = _spy(monkeypatch)
        results = [_layer(3, 4, 5, 6, True, False) for _ in range(6)]
        assert calls == {"forward": 3, "backward": 3}
        assert len(persistent_rnn._timings) == 2
        assert all(len(t[0]) == 3 and len(t[1]) == 3 for t in persistent_rnn._timings.values())
        for r in results[1::2]:
            for a, b in zip(r, results[0]):
                np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    finally:
        streams.set_threads(before or None)
