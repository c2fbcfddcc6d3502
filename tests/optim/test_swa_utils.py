"""optim.swa_utils: AveragedModel (equal mean, avg_fn, multi_avg_fn EMA, buffers), SWALR against its closed
form, update_bn against the statistics of the whole pass."""
import math

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.optim import swa_utils

RNG = np.random.default_rng(0)


def model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).to(nerve.float64)


def snapshots(net, k):
    out = []
    for _ in range(k):
        with nerve.no_grad():
            for p in net.parameters():
                p.copy_(nerve.tensor(RNG.standard_normal(p.shape)))
        net[1].running_mean.copy_(nerve.tensor(RNG.standard_normal(4)))
        out.append({n: p.numpy().copy() for n, p in net.state_dict().items()})
        yield out[-1]


def test_equal_mean_and_buffers_copied():
    net = model()
    avg = swa_utils.AveragedModel(net)
    seen = []
    for snap in snapshots(net, 4):
        seen.append(snap)
        avg.update_parameters(net)
    for name in ("0.weight", "0.bias", "1.weight"):
        np.testing.assert_allclose(avg.module.state_dict()[name].numpy(), np.mean([s[name] for s in seen], 0))
    np.testing.assert_array_equal(avg.module[1].running_mean.numpy(), seen[-1]["1.running_mean"])  # copied
    assert avg.n_averaged.item() == 4 and "n_averaged" in avg.state_dict() and "module.0.weight" in avg.state_dict()
    x = nerve.tensor(RNG.standard_normal((2, 3)))
    avg.eval()
    np.testing.assert_allclose(avg(x).numpy(), avg.module(x).numpy())


@pytest.mark.parametrize("multi", [False, True])
def test_ema_avg_fns(multi):
    net = model()
    kw = {"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.9)} if multi else {"avg_fn": swa_utils.get_ema_avg_fn(0.9)}
    avg = swa_utils.AveragedModel(net, use_buffers=True, **kw)
    ema = None
    for snap in snapshots(net, 5):
        avg.update_parameters(net)
        ema = dict(snap) if ema is None else {k: 0.9 * ema[k] + 0.1 * snap[k] for k in snap}
    for name in ("0.weight", "1.bias", "1.running_mean"):
        np.testing.assert_allclose(avg.module.state_dict()[name].numpy(), ema[name])
    with pytest.raises(ValueError, match="avg_fn or multi_avg_fn, not both"):
        swa_utils.AveragedModel(net, avg_fn=swa_utils.get_ema_avg_fn(), multi_avg_fn=swa_utils.get_ema_multi_avg_fn())


@pytest.mark.parametrize("strategy,epochs", [("cos", 4), ("linear", 3), ("cos", 0)])
def test_swalr_closed_form(strategy, epochs):
    p = nn.Parameter(nerve.zeros(1))
    opt = nerve.optim.SGD([p], lr=0.5)
    sched = swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=epochs, anneal_strategy=strategy)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()

    def anneal(t):
        return (1 - math.cos(math.pi * t)) / 2 if strategy == "cos" else t
    # closed form: the lr moves from 0.5 to 0.05 along the anneal curve over `epochs` steps
    expected = [0.05 + (0.5 - 0.05) * (1 - anneal(min(1.0, e / max(1, epochs)))) if epochs else 0.05
                for e in range(8)]
    np.testing.assert_allclose(lrs, expected, atol=1e-12)
    with pytest.raises(ValueError, match="SWALR: anneal_strategy"):
        swa_utils.SWALR(opt, 0.1, anneal_strategy="exp")


def test_update_bn_is_the_pass_average():
    net = model()
    x = RNG.standard_normal((20, 3))
    batches = [nerve.tensor(x[i:i + 5]) for i in range(0, 20, 5)]
    net.eval()
    swa_utils.update_bn([(b, 0) for b in batches], net)
    assert not net.training and net[1].momentum == 0.1
    h = [net[0](b).detach().numpy() for b in batches]
    np.testing.assert_allclose(net[1].running_mean.numpy(), np.mean([a.mean(0) for a in h], 0))
    np.testing.assert_allclose(net[1].running_var.numpy(), np.mean([a.var(0, ddof=1) for a in h], 0))


def test_swa_improves_a_noisy_regression():
    """SGD with a constant large lr wanders; the average of its iterates is closer to the optimum."""
    gen = np.random.default_rng(1)
    x = gen.standard_normal((200, 2))
    y = x @ np.array([[1.0], [-1.0]]) + 0.1 * gen.standard_normal((200, 1))
    net = nn.Linear(2, 1, bias=False).to(nerve.float64)
    avg = swa_utils.AveragedModel(net)
    opt = nerve.optim.SGD(net.parameters(), lr=0.2)
    for step in range(300):
        i = gen.integers(0, 200, 4)
        loss = ((net(nerve.tensor(x[i])) - nerve.tensor(y[i])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= 100:
            avg.update_parameters(net)
    best = np.linalg.lstsq(x, y, rcond=None)[0].T
    assert np.linalg.norm(avg.module.weight.numpy() - best) < np.linalg.norm(net.weight.detach().numpy() - best)
