"""nerve.train.metrics against scikit-learn, one-shot and accumulated over batches."""
import numpy as np
import pytest
from sklearn import metrics as skm

import nerve
from nerve.train import metrics as M


@pytest.fixture
def classes():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((200, 6)).astype(np.float32)
    y = rng.integers(0, 6, 200)
    scores[np.arange(200)[:120], y[:120]] += 1.5  # better than chance, not perfect
    return scores, y


def test_classification_metrics_match_sklearn(classes):
    scores, y = classes
    pred = scores.argmax(1)
    assert M.accuracy(scores, y) == pytest.approx(skm.accuracy_score(y, pred))
    assert M.accuracy(nerve.tensor(scores), nerve.tensor(y)) == pytest.approx(skm.accuracy_score(y, pred))
    for k in (1, 3, 5):
        assert M.top_k_accuracy(scores, y, k=k) == pytest.approx(
            skm.top_k_accuracy_score(y, scores, k=k, labels=range(6)))
    assert np.array_equal(M.confusion_matrix(scores, y), skm.confusion_matrix(y, pred))
    for ours, theirs in ((M.precision, skm.precision_score), (M.recall, skm.recall_score),
                         (M.f1_score, skm.f1_score)):
        assert ours(scores, y) == pytest.approx(theirs(y, pred, average="macro", zero_division=0))
        assert np.allclose(ours(scores, y, average=None), theirs(y, pred, average=None, zero_division=0))


def test_missing_classes_and_zero_division_match_sklearn():
    y = np.array([0, 0, 1, 1, 3, 3])
    pred = np.array([0, 1, 1, 1, 0, 0])  # class 3 never predicted; class 2 absent from both
    for ours, theirs in ((M.precision, skm.precision_score), (M.recall, skm.recall_score),
                         (M.f1_score, skm.f1_score)):
        assert ours(pred, y) == pytest.approx(theirs(y, pred, average="macro", zero_division=0))


def test_binary_scores_one_hot_targets_and_thresholds():
    probs = np.array([[0.9], [0.2], [0.6], [0.4]])
    y = np.array([1, 0, 0, 0])
    assert M.accuracy(probs, y) == 0.75
    logits = np.array([2.0, -1.0, 0.3, -0.2])
    assert M.accuracy(logits, y, threshold=0.0) == 0.75
    one_hot = np.eye(3)[[0, 2, 1]]
    assert M.accuracy(np.eye(3)[[0, 2, 2]] * 5, one_hot) == pytest.approx(2 / 3)


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    y = rng.standard_normal((50, 3)) * [1, 10, 100] + [0, 5, -50]
    p = y + rng.standard_normal((50, 3))
    assert M.mae(p, y) == pytest.approx(skm.mean_absolute_error(y, p))
    assert M.mse(p, y) == pytest.approx(skm.mean_squared_error(y, p))
    assert M.r2_score(p, y) == pytest.approx(skm.r2_score(y, p))
    assert M.r2_score(p[:, :1], y[:, 0]) == pytest.approx(skm.r2_score(y[:, 0], p[:, 0]))
    const = np.full(5, 2.0)
    assert M.r2_score(const, const) == skm.r2_score(const, const) == 1.0
    assert M.r2_score(const + 1, const) == skm.r2_score(const, const + 1) == 0.0


@pytest.mark.parametrize("name, fn", [
    ("accuracy", M.accuracy), ("top3", lambda p, y: M.top_k_accuracy(p, y, 3)), ("precision", M.precision),
    ("recall", M.recall), ("f1", M.f1_score),
])
def test_accumulated_classification_equals_one_shot(classes, name, fn):
    scores, y = classes
    metric = M.get_metric(name)
    assert metric.name == name
    for lo in range(0, 200, 32):
        metric.update(scores[lo:lo + 32], y[lo:lo + 32])
    assert metric.result() == pytest.approx(fn(scores, y))
    clone = M.get_metric(name)
    clone.load_state_dict(metric.state_dict())
    assert clone.result() == metric.result()


@pytest.mark.parametrize("name, fn", [("mae", M.mae), ("mse", M.mse), ("r2", M.r2_score)])
def test_accumulated_regression_equals_one_shot(name, fn):
    rng = np.random.default_rng(3)
    y = rng.standard_normal((101, 2)) + 1000.0  # a large mean tests the streaming variance
    p = y + 0.1 * rng.standard_normal((101, 2))
    metric = M.get_metric(name)
    for lo in range(0, 101, 16):
        metric.update(p[lo:lo + 16], y[lo:lo + 16])
    assert metric.result() == pytest.approx(fn(p, y), rel=1e-9)


def test_callable_metric_is_batch_weighted_and_unknown_names_fail():
    metric = M.get_metric(lambda p, y: float(np.mean(p == y)))
    metric.update(np.array([1, 1, 1]), np.array([1, 1, 1]))
    metric.update(np.array([0]), np.array([1]))
    assert metric.result() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="unknown metric 'acuracy'"):
        M.get_metric("acuracy")
    with pytest.raises(ValueError, match="3 predictions but 2 targets"):
        M.accuracy(np.zeros((3, 2)), np.zeros(2))
