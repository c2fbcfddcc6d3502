"""fit(rule=...): the same model, data, optimiser and fit, only the learning rule changes; rules learn, log
their alignment, survive checkpoints, and refuse data they cannot use."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

import nerve
from nerve import nn
from nerve.optim import SGD
from nerve.rules import Backprop, DirectFeedbackAlignment, FeedbackAlignment, Oja
from nerve.train import AlignmentLogger, Checkpoint, CSVLogger, evaluate, fit
from tests.helpers import blobs


def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16).astype(np.float32), y


def net(seed=0):
    nerve.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))


@pytest.mark.parametrize("make", [lambda m: FeedbackAlignment(m, seed=0),
                                  lambda m: FeedbackAlignment(m, feedback="sign"),
                                  lambda m: DirectFeedbackAlignment(m, seed=0)])
def test_rules_learn_digits_and_align_within_an_epoch(make, tmp_path):
    x, y = digits()
    model = net()
    rule = make(model)
    log = tmp_path / "log.csv"
    hist = fit(model, (x[:1400], y[:1400]), loss="cross_entropy", rule=rule, epochs=10, batch_size=32, verbose=0,
               optimizer=SGD(model.parameters(), lr=0.05, momentum=0.9),
               callbacks=[AlignmentLogger(rule, x[:200], y[:200], "cross_entropy"), CSVLogger(log)])
    acc = evaluate(model, (x[1400:], y[1400:]), metrics=["accuracy"])["accuracy"]
    bp = net()
    fit(bp, (x[:1400], y[:1400]), loss="cross_entropy", epochs=10, batch_size=32, verbose=0,
        optimizer=SGD(bp.parameters(), lr=0.05, momentum=0.9))
    # measured: BP 0.924, FA 0.877, sign 0.904, DFA 0.909 (FA lags most in the first epochs)
    assert acc > 0.83 and acc > evaluate(bp, (x[1400:], y[1400:]), metrics=["accuracy"])["accuracy"] - 0.08
    assert hist.history["align/2"][0] < 90  # the hidden layer's update already points with backprop's
    assert hist.history["align/4"][0] < 1e-3  # the output layer's update is backprop's own
    assert "align/2" in log.read_text().splitlines()[0]


def test_backprop_rule_is_plain_fit():
    x, y = blobs()
    results = []
    for rule in (None, "bp"):
        nerve.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        fit(model, (x, y), loss="cross_entropy", optimizer=SGD(model.parameters(), lr=0.1), epochs=2, verbose=0,
            rule=Backprop(model) if rule else None)
        results.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_keeps_the_feedback_matrices_and_resumes_exactly(tmp_path):
    x, y = blobs()

    def run(epochs, seed, resume=None):
        nerve.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
        rule = FeedbackAlignment(model, seed=seed)
        fit(model, (x, y), loss="cross_entropy", optimizer=SGD(model.parameters(), lr=0.1), epochs=epochs,
            verbose=0, rule=rule, checkpoint=Checkpoint(tmp_path / f"ck{seed}.nrv"), resume=resume)
        return model, rule

    whole, whole_rule = run(3, seed=1)
    run(2, seed=1)
    # a rule built with another seed: resuming must restore the first run's B, not keep its own
    resumed, rule = run(3, seed=7, resume=tmp_path / "ck1.nrv")
    np.testing.assert_array_equal(rule.buffers["B.2"].data, whole_rule.buffers["B.2"].data)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_unsupervised_rule_trains_on_inputs_alone():
    x, _ = blobs(400)
    x = (x - x.mean(0)) * np.array([2.0, 1.0, 1.0, 1.0], dtype=np.float32)  # one clearly leading component
    nerve.manual_seed(0)
    model = nn.Linear(4, 1, bias=False)
    hist = fit(model, x, optimizer=SGD(model.parameters(), lr=0.01), epochs=5, batch_size=16, verbose=0,
               rule=Oja(model))
    assert hist.history["update"][-1] < hist.history["update"][0]
    top = np.linalg.eigh(np.cov(x.T))[1][:, -1]
    assert abs(model.weight.data[0] @ top) / np.linalg.norm(model.weight.data) > 0.99


def test_bad_combinations():
    x, y = blobs()
    model = nn.Sequential(nn.Linear(4, 3))
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="supervised rule but the batches have no targets"):
        fit(model, x, loss="cross_entropy", optimizer=opt, verbose=0, rule=FeedbackAlignment(model))
    hebb = nn.Linear(4, 2, bias=False)
    with pytest.raises(ValueError, match="unsupervised rule but the batches have targets"):
        fit(hebb, (x, y), optimizer=SGD(hebb.parameters(), lr=0.1), verbose=0, rule=Oja(hebb))
    with pytest.raises(ValueError, match="uses no loss"):
        fit(hebb, x, loss="mse", optimizer=SGD(hebb.parameters(), lr=0.1), verbose=0, rule=Oja(hebb))
    with pytest.raises(ValueError, match="another model"):
        fit(model, (x, y), loss="cross_entropy", optimizer=opt, verbose=0, rule=FeedbackAlignment(nn.Linear(4, 3)))
    with pytest.raises(ValueError, match="rule= or train_step="):
        fit(model, (x, y), optimizer=opt, verbose=0, rule=Backprop(model), train_step=lambda m, b, o: {})
    with pytest.raises(TypeError, match="must be a nerve.rules.Rule"):
        fit(model, (x, y), loss="cross_entropy", optimizer=opt, verbose=0, rule="fa")
    with pytest.raises(ValueError, match="pass loss="):
        fit(model, (x, y), optimizer=opt, verbose=0, rule=FeedbackAlignment(model))


def test_a_non_finite_update_stops_training_naming_the_layer():
    x, y = blobs()
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    rule = FeedbackAlignment(model, seed=0, scale=1e38)  # feedback so large that the hidden update overflows
    with pytest.raises(FloatingPointError, match="layer '0'.*not finite"):
        fit(model, (x * 10, y), loss="cross_entropy", optimizer=SGD(model.parameters(), lr=0.1), verbose=0,
            rule=rule)
