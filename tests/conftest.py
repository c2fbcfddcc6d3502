import signal

import pytest

import nerve

# NOTE: a suite started in the background of a non-interactive shell inherits SIGINT ignored, and so would the
# processes that the Ctrl-C tests start; a handler here gives them the default disposition at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    nerve.manual_seed(0)
    yield
