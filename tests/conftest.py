import pytest

import nerve


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    nerve.manual_seed(0)
    yield
