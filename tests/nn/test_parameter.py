"""Parameter: a leaf that requires grad, shares its data, refuses integer dtypes, repr."""
import numpy as np
import pytest

import nerve
import nerve.nn as nn


def test_parameter():
    p = nn.Parameter(nerve.randn(2, 3))
    assert p.requires_grad and p.is_leaf and isinstance(p, nerve.Tensor)
    assert repr(p).startswith("Parameter containing:\ntensor(")
    t = nerve.ones(3)
    assert np.shares_memory(nn.Parameter(t).data, t.data)
    assert not nn.Parameter(nerve.ones(1), requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(nerve.tensor([1, 2]))
    y = p * 2
    assert type(y) is nerve.Tensor
