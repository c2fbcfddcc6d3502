"""``nerve.amp`` (autocast accepted, GradScaler real), ``nerve.compile`` and ``inference_mode``: PyTorch training
scripts that use them run unchanged."""
import numpy as np
import pytest

import nerve
from nerve import nn, optim


def _model(dtype=nerve.float32):
    nerve.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype=dtype)


def _data(dtype=np.float32):
    rng = np.random.default_rng(0)
    return nerve.tensor(rng.normal(size=(16, 4)).astype(dtype)), nerve.tensor(rng.normal(size=(16, 1)).astype(dtype))


def test_scaled_then_unscaled_gradients_equal_plain_ones_and_the_step_is_the_same():
    x, y = _data()
    plain, scaled = _model(), _model()
    opt_plain, opt_scaled = optim.SGD(plain.parameters(), lr=0.1), optim.SGD(scaled.parameters(), lr=0.1)
    scaler = nerve.amp.GradScaler(init_scale=2.0 ** 10)
    nn.functional.mse_loss(plain(x), y).backward()
    opt_plain.step()
    with nerve.autocast("cpu", dtype=nerve.float16):  # accepted, changes nothing
        loss = nn.functional.mse_loss(scaled(x), y)
    assert loss.dtype == nerve.float32
    scaler.scale(loss).backward()
    assert abs(scaled[0].weight.grad.numpy()).max() > 100 * abs(plain[0].weight.grad.numpy()).max()
    scaler.unscale_(optimizer=opt_scaled)
    np.testing.assert_allclose(scaled[0].weight.grad.numpy(), plain[0].weight.grad.numpy(), rtol=1e-5, atol=1e-8)
    nn.utils.clip_grad_norm_(scaled.parameters(), 1e6)  # clipping between unscale_ and step, as PyTorch documents
    scaler.step(opt_scaled)
    scaler.update()
    for a, b in zip(plain.parameters(), scaled.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_overflow_skips_the_step_and_backs_off_then_growth_after_the_interval():
    x, y = _data(np.float16)
    model = _model(nerve.float16)
    opt = optim.SGD(model.parameters(), lr=0.01)
    scaler = nerve.amp.GradScaler(init_scale=2.0 ** 24, growth_interval=3)  # 2^24 * loss overflows float16
    scales, changed = [], []
    for _ in range(12):
        before = [p.numpy().copy() for p in model.parameters()]
        opt.zero_grad()
        scaler.scale(nn.functional.mse_loss(model(x), y)).backward()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        changed.append(any(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters())))
    # nine overflowing steps are skipped, halving the scale each time; the third finite step in a row doubles it
    assert changed == [False] * 9 + [True] * 3
    assert scales == [2.0 ** e for e in (23, 22, 21, 20, 19, 18, 17, 16, 15, 15, 15, 16)]
    assert all(np.isfinite(p.numpy()).all() for p in model.parameters())


def test_misuse_and_disabled_scaler_and_state():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    scaler = nerve.amp.GradScaler(init_scale=8.0)
    x, y = _data()
    scaler.scale(nn.functional.mse_loss(model(x), y)).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="unscale_: already called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="step: already called"):
        scaler.step(opt)
    scaler.update()
    assert scaler.state_dict()["scale"] == 8.0 and scaler.state_dict()["_growth_tracker"] == 1
    other = nerve.amp.GradScaler()
    other.load_state_dict(scaler.state_dict())
    assert other.get_scale() == 8.0
    off = nerve.cuda.amp.GradScaler(enabled=False)
    loss = nn.functional.mse_loss(model(x), y)
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    with pytest.raises(ValueError, match="backoff_factor"):
        nerve.amp.GradScaler(backoff_factor=2.0)
    with pytest.raises(TypeError, match="device_type must be a string"):
        nerve.autocast(True)
    with nerve.cuda.amp.autocast(dtype=nerve.float16):
        pass


def test_compile_and_inference_mode():
    model = _model()
    assert nerve.compile(model, mode="reduce-overhead") is model
    decorated = nerve.compile(fullgraph=True)(lambda t: t * 2)
    assert decorated(nerve.ones(2)).tolist() == [2.0, 2.0]
    x = nerve.ones(2, 4)
    with nerve.inference_mode():
        assert model(x).grad_fn is None and not nerve.is_grad_enabled()
        with nerve.inference_mode(False):
            assert model(x).grad_fn is not None

    @nerve.inference_mode()
    def predict(t):
        return model(t)
    assert predict(x).grad_fn is None and nerve.is_grad_enabled()
