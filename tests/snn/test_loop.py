"""TimeLoop: resets, layout, per-layer metrics against hand counts, fit with full and truncated BPTT, learning."""
from __future__ import annotations

import numpy as np
import pytest

import nerve
from nerve import nn, snn
from nerve.snn import functional as SF


def make_net(seed=0, hidden=16):
    nerve.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), snn.Leaky(0.9, init_hidden=True), nn.Linear(hidden, 2),
                         snn.Leaky(0.9, init_hidden=True, output=True))


def blobs(n=256, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(0, 0.3, (n, 4)) + np.where(y[:, None] == 1, 1.0, -1.0) * np.array([1, -1, 0.5, 0])
    return np.clip(X + 1, 0, None).astype(np.float32), y


def test_outputs_time_first_and_state_reset_between_calls():
    loop = snn.TimeLoop(make_net(), num_steps=7)
    x = nerve.tensor(blobs(5)[0])
    spk, mem = loop(x)
    assert spk.shape == (7, 5, 2) and mem.shape == (7, 5, 2)
    spk2, mem2 = loop(x)
    np.testing.assert_array_equal(mem.numpy(), mem2.numpy())
    spk3, _ = loop(nerve.tensor(blobs(3)[0]))  # another batch size: the loop resets, no error
    assert spk3.shape == (7, 3, 2)


def test_stats_match_hand_counts():
    net = make_net(hidden=6)
    loop = snn.TimeLoop(net, num_steps=9)
    seen, inputs = [], []
    net[1].register_forward_hook(lambda m, a, out: seen.append(out.numpy()))
    net[2].register_forward_hook(lambda m, a, out: inputs.append(a[0].numpy()))
    x = blobs(8)[0] * 2
    loop(nerve.tensor(x))
    stats = loop.stats()
    s = np.array(seen)  # (9, 8, 6)
    assert stats["1.rate"] == pytest.approx(s.mean())
    assert stats["1.silent"] == pytest.approx(np.mean(s.sum((0, 1)) == 0))
    assert stats["1.saturated"] == pytest.approx(np.mean(s.min((0, 1)) == 1))
    assert stats["2.synops"] == pytest.approx(sum(np.count_nonzero(i) for i in inputs) * 2 / 8)
    assert stats["0.synops"] == pytest.approx(np.count_nonzero(x) * 9 * 6 / 8)
    assert stats["synops"] == pytest.approx(stats["0.synops"] + stats["2.synops"])
    assert 0 < stats["1.rate"] < 1


def test_spike_train_input_and_its_errors():
    loop = snn.TimeLoop(make_net(), num_steps=5, time_var=True)
    train = snn.spikegen.rate(blobs(3)[0] / 3, num_steps=5)
    assert loop(train)[0].shape == (5, 3, 2)
    with pytest.raises(ValueError, match=r"TimeLoop: time_var input must be \(num_steps=5, batch, ...\), got shape "
                                         r"\(3, 4\)"):
        loop(blobs(3)[0])
    batch_first = snn.TimeLoop(make_net(), num_steps=5, time_var=True, time_first=False)
    np.testing.assert_array_equal(batch_first(train.numpy().swapaxes(0, 1))[1].numpy(), loop(train)[1].numpy())
    encoded = snn.TimeLoop(make_net(), 5, encoder=lambda x: snn.spikegen.rate(x, num_steps=5))
    assert encoded(blobs(3)[0])[0].shape == (5, 3, 2)
    with pytest.raises(ValueError, match="TimeLoop: Linear holds no spiking neuron"):
        snn.TimeLoop(nn.Linear(2, 2), 3)
    with pytest.raises(ValueError, match="TimeLoop: num_steps must be a positive int"):
        snn.TimeLoop(make_net(), 0)


class CountingSGD(nerve.optim.SGD):
    steps = 0

    def step(self, *a, **k):
        CountingSGD.steps += 1
        return super().step(*a, **k)


def test_train_step_full_bptt_equals_fit_default_and_truncation_steps_per_chunk():
    X, y = blobs(32)
    results = []
    for use_step in (False, True):
        loop = snn.TimeLoop(make_net(3), num_steps=6)
        opt = nerve.optim.SGD(loop.parameters(), lr=0.1)
        kwargs = {"train_step": loop.train_step(SF.ce_rate_loss())} if use_step else {"loss": SF.ce_rate_loss()}
        hist = nerve.train.fit(loop, (X, y), optimizer=opt, epochs=1, batch_size=16, shuffle=False, verbose=0,
                               metrics=[SF.SpikeAccuracy()], **kwargs)
        results.append((loop.net[0].weight.numpy().copy(), hist.history))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    assert results[1][1]["loss"][0] == pytest.approx(results[0][1]["loss"][0], rel=1e-6)
    assert {"1.rate", "1.silent", "1.saturated", "synops", "accuracy"} <= set(results[1][1])
    loop = snn.TimeLoop(make_net(3), num_steps=6)
    CountingSGD.steps = 0
    nerve.train.fit(loop, (X, y), optimizer=CountingSGD(loop.parameters(), lr=0.1), epochs=1, batch_size=16,
                    verbose=0, train_step=loop.train_step(SF.ce_rate_loss(), truncation=4))
    assert CountingSGD.steps == 2 * 2  # 2 batches x chunks of 4 + 2 steps
    with pytest.raises(ValueError, match="TimeLoop.train_step: truncation must be"):
        loop.train_step(SF.ce_rate_loss(), truncation=0)


def test_a_small_task_is_learned_with_fit():
    X, y = blobs(256)
    loop = snn.TimeLoop(make_net(1), num_steps=10)
    opt = nerve.optim.Adam(loop.parameters(), lr=1e-2)
    before = nerve.train.evaluate(loop, (X, y), metrics=[SF.SpikeAccuracy()], batch_size=64)["accuracy"]
    nerve.train.fit(loop, (X, y), optimizer=opt, epochs=4, batch_size=32, verbose=0,
                    train_step=loop.train_step(SF.ce_count_loss()))
    after = nerve.train.evaluate(loop, (X, y), metrics=[SF.SpikeAccuracy()], batch_size=64)["accuracy"]
    assert after > 0.95 and after > before


def test_spike_count_wrapper_gives_class_scores_for_predict():
    from nerve.models.snn import SpikeCount, SpikingMLP
    nerve.manual_seed(0)
    model = SpikingMLP(4, 8, 2, num_steps=5)
    X = blobs(40)[0] * 3
    counts = nerve.train.predict(SpikeCount(model), X, batch_size=16).numpy()
    with nerve.no_grad():
        spk, _ = model(nerve.tensor(X))
    np.testing.assert_array_equal(counts, spk.numpy().sum(0))
    assert counts.shape == (40, 2)
