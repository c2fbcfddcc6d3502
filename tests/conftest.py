import signal

import pytest

import nerve
from nerve.ops import streams

# NOTE: a suite started in the background of a non-interactive shell inherits SIGINT ignored, and so would the
# processes that the Ctrl-C tests start; a handler here gives them the default disposition at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, and in the threading mode the process started with (a test
    that switches nerve's own threads on or off gets it back afterwards)."""
    nerve.manual_seed(0)
    threads = streams.get_threads()
    yield
    # NOTE: also when a test's monkeypatch put THREADS back after the test gave BLAS its threads back: both
    # threads' kinds spinning on the cores made later tests 40x slower (a language-model run 67 s instead of 1.5)
    if streams.get_threads() != threads or (threads and not streams._state.get("blas_threads")):
        streams.set_threads(threads or None)
