"""nerve.sklearn: scikit-learn's own estimator checks, pipelines, grid search, and the estimators' options."""
import functools
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import nerve
from nerve import nn, optim
from nerve.sklearn import NeuralNetClassifier, NeuralNetRegressor


@parametrize_with_checks([NeuralNetClassifier(), NeuralNetRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


def test_pipeline_with_scaler_learns_digits(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), NeuralNetClassifier(max_epochs=15, random_state=0))
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.93
    proba = pipe.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_grid_search_picks_a_good_model(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), NeuralNetClassifier(max_epochs=8, random_state=0))
    grid = {"neuralnetclassifier__hidden_layer_sizes": [(16,), (64,)], "neuralnetclassifier__lr": [1e-3, 1e-2]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X_train, y_train)
    assert search.best_score_ > 0.9
    assert search.score(X_test, y_test) > 0.9
    assert len(search.cv_results_["params"]) == 4


def test_string_labels_and_probabilities(iris):
    X, y = iris
    clf = NeuralNetClassifier(lr=0.01, max_epochs=20, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    pred = clf.predict(X)
    assert pred.dtype == clf.classes_.dtype and set(pred) <= set(clf.classes_)
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)


def test_binary_labels(iris):
    X, y = iris
    keep = y != "setosa"
    clf = NeuralNetClassifier(max_epochs=30, random_state=0).fit(X[keep], y[keep])
    assert list(clf.classes_) == ["versicolor", "virginica"]
    assert clf.predict_proba(X[keep]).shape == (keep.sum(), 2)
    assert clf.score(X[keep], y[keep]) > 0.85


def test_a_single_class_is_refused(iris):
    X, _ = iris
    with pytest.raises(ValueError, match="NeuralNetClassifier: y has 1 class"):
        NeuralNetClassifier().fit(X[:10], ["a"] * 10)


def test_random_state_makes_fits_repeat_and_leaves_global_stream_alone(iris):
    X, y = iris
    nerve.manual_seed(123)
    before = nerve.get_rng_state()
    a = NeuralNetClassifier(max_epochs=3, dropout=0.2, random_state=7).fit(X, y).predict_proba(X)
    assert nerve.get_rng_state() == before
    b = NeuralNetClassifier(max_epochs=3, dropout=0.2, random_state=7).fit(X, y).predict_proba(X)
    c = NeuralNetClassifier(max_epochs=3, dropout=0.2, random_state=8).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_history_and_fitted_attributes(iris):
    X, y = iris
    clf = NeuralNetClassifier(hidden_layer_sizes=(8, 4), activation="tanh", max_epochs=5, random_state=0).fit(X, y)
    assert clf.n_features_in_ == 4 and clf.n_epochs_ == 5
    assert len(clf.history_["loss"]) == 5 and clf.history_["loss"][-1] < clf.history_["loss"][0]
    widths = [(m.in_features, m.out_features) for m in clf.module_.modules() if isinstance(m, nn.Linear)]
    assert widths == [(4, 8), (8, 4), (4, 3)]
    assert isinstance(clf.optimizer_, optim.Adam)


def test_early_stopping_holds_out_data_and_stops(iris):
    X, y = iris
    clf = NeuralNetClassifier(max_epochs=500, lr=0.05, early_stopping=True, validation_fraction=0.2,
                              n_iter_no_change=3, random_state=0).fit(X, y)
    assert "val_loss" in clf.history_
    assert clf.n_epochs_ < 500
    assert clf.score(X, y) > 0.9


def test_training_loss_plateau_stops_before_max_epochs():
    X = np.random.default_rng(0).normal(size=(20, 2))
    reg = NeuralNetRegressor(max_epochs=1000, tol=10.0, n_iter_no_change=2, random_state=0).fit(X, X[:, 0])
    assert reg.n_epochs_ == 3


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "rmsprop", "adagrad",
                                       functools.partial(optim.SGD, momentum=0.9)])
def test_optimizer_choices(iris, optimizer):
    X, y = iris
    clf = NeuralNetClassifier(optimizer=optimizer, lr=0.05, max_epochs=30, weight_decay=1e-4, random_state=0)
    assert clf.fit(X, y).score(X, y) > 0.85


def _two_layer(n_features: int, n_outputs: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_features, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, n_outputs))


def test_custom_module_factory_and_pickle(iris):
    X, y = iris
    clf = NeuralNetClassifier(module=_two_layer, lr=0.01, max_epochs=20, random_state=0).fit(X, y)
    assert isinstance(clf.module_[2], nn.LayerNorm)
    assert clf.score(X, y) > 0.9
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_module_factory_must_return_a_module(iris):
    X, y = iris
    with pytest.raises(TypeError, match="must return a nerve.nn.Module, got function"):
        NeuralNetClassifier(module=lambda n, k: (lambda x: x)).fit(X, y)


@pytest.mark.parametrize("param, value, expected", [
    ("lr", 0.0, "lr must be a positive number"),
    ("hidden_layer_sizes", (8, 0), "hidden_layer_sizes must be a positive int or a sequence"),
    ("optimizer", "lbfgs", "optimizer must be one of"),
    ("batch_size", "big", "batch_size must be a positive int or 'auto'"),
    ("max_epochs", 0, "max_epochs must be a positive int"),
    ("dropout", 1.0, r"dropout must be a number in \[0, 1\)"),
    ("validation_fraction", 1.5, r"validation_fraction must be a number in \(0, 1\)"),
    ("verbose", 3, "verbose must be 0, 1 or 2"),
])
def test_bad_parameters_are_named(iris, param, value, expected):
    X, y = iris
    with pytest.raises(ValueError, match=f"NeuralNetClassifier: {expected}"):
        NeuralNetClassifier(**{param: value}).fit(X, y)


def test_wrong_feature_count_at_predict(iris):
    X, y = iris
    clf = NeuralNetClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but NeuralNetClassifier is expecting 4"):
        clf.predict(X[:, :3])


def test_classifier_partial_fit_continues_training(iris):
    X, y = iris
    clf = NeuralNetClassifier(lr=0.01, batch_size="auto", random_state=0)
    with pytest.raises(ValueError, match="first call needs classes="):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:20], y[:20], classes=np.unique(y))  # the first rows hold only 'setosa'
    for _ in range(30):
        clf.partial_fit(X, y)
    assert clf.n_epochs_ == 31 and len(clf.history_["loss"]) == 31
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="previously unseen labels"):
        clf.partial_fit(X[:2], ["setosa", "rose"])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:, :3], y)
    clf.fit(X[:5], y[[0, 50, 100, 1, 51]])  # fit starts over
    assert clf.n_epochs_ <= 100 and len(clf.history_["loss"]) == clf.n_epochs_


def test_regressor_standardises_targets_of_any_scale():
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = 1000.0 * y + 5e4
    reg = NeuralNetRegressor(max_epochs=60, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200,)
    assert reg.score(X, y) > 0.95
    np.testing.assert_allclose(reg.y_mean_, [y.mean()])


def test_regressor_multioutput_and_partial_fit():
    X, y = make_regression(n_samples=120, n_features=4, n_targets=3, noise=0.5, random_state=1)
    X = StandardScaler().fit_transform(X)
    reg = NeuralNetRegressor(max_epochs=60, random_state=0).fit(X, y)
    assert reg.n_outputs_ == 3 and reg.predict(X).shape == (120, 3)
    assert reg.score(X, y) > 0.9
    inc = NeuralNetRegressor(lr=0.01, random_state=0)
    for _ in range(20):
        inc.partial_fit(X, y)
    assert inc.score(X, y) > 0.9
    with pytest.raises(ValueError, match=r"y has shape \(120,\) but the first call's y had 3 target"):
        inc.partial_fit(X, y[:, 0])


def test_regressor_pipeline_in_grid_search():
    X, y = make_regression(n_samples=150, n_features=6, noise=2.0, random_state=2)
    pipe = make_pipeline(StandardScaler(), NeuralNetRegressor(lr=0.01, max_epochs=30, random_state=0))
    search = GridSearchCV(pipe, {"neuralnetregressor__weight_decay": [0.0, 1e-3]}, cv=2).fit(X, y)
    assert search.best_score_ > 0.8
