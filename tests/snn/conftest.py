"""Shared fixtures of the spiking-network tests."""
import numpy as np
import pytest

import nerve


@pytest.fixture
def float64_default():
    """Parameters built in float64, so the NumPy loops see the same β and θ."""
    old = nerve.backend.get_default_dtype()
    nerve.backend.set_default_dtype(np.float64)
    yield
    nerve.backend.set_default_dtype(old)
