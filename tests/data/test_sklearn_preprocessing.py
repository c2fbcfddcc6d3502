"""scikit-learn's preprocessing plugs into nerve.data as it is: fit on the training split, transform, batch."""
import numpy as np
import pytest

import nerve
from nerve.data import DataLoader, TensorDataset

pytest.importorskip("sklearn")
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402


def test_pipeline_output_feeds_loader():
    rng = np.random.default_rng(0)
    n = 64
    numeric = rng.normal(5.0, 3.0, size=(n, 3))
    numeric[rng.random((n, 3)) < 0.1] = np.nan                    # missing values to impute
    colour = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=(n, 1))
    table = np.concatenate([numeric.astype(object), colour], axis=1)
    y = (numeric[:, 0] > 5).astype(np.int64)

    preprocess = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), [0, 1, 2]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [3]),
    ])
    train, test = table[:48], table[48:]
    x_train = preprocess.fit_transform(train).astype(np.float32)
    x_test = preprocess.transform(test).astype(np.float32)
    assert x_train.shape == (48, 6) and x_test.shape == (16, 6)
    assert not np.isnan(x_train).any()
    np.testing.assert_allclose(x_train[:, :3].mean(axis=0), 0.0, atol=1e-5)

    loader = DataLoader(TensorDataset(x_train, y[:48]), batch_size=16, shuffle=True, generator=0)
    weight = nerve.randn(6, 2, requires_grad=True)
    seen = 0
    for xb, yb in loader:
        assert xb.dtype == np.float32 and yb.dtype == np.int64
        logits = xb @ weight
        logits.sum().backward()
        seen += len(yb)
    assert seen == 48 and weight.grad.shape == (6, 2)
