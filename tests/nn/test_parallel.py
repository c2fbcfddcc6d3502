"""nn.DataParallel (runs its module; state-dict keys prefixed ``module.``), SyncBatchNorm (batch norm on one
process, any number of spatial dims) and its converter, nn.parallel.DistributedDataParallel's pointer."""
import numpy as np
import pytest

import nerve
from nerve import nn

RNG = np.random.default_rng(0)


def test_data_parallel():
    net = nn.Linear(3, 2)
    dp = nn.DataParallel(net, device_ids=[0])
    x = nerve.randn(4, 3)
    np.testing.assert_array_equal(dp(x).numpy(), net(x).numpy())
    assert dp.module is net and sorted(dp.state_dict()) == ["module.bias", "module.weight"]
    assert nn.parallel.DataParallel is nn.DataParallel
    with pytest.raises(TypeError, match="DataParallel: expected a Module"):
        nn.DataParallel(lambda v: v)
    with pytest.raises(RuntimeError, match="nerve.distributed.DistributedDataParallel"):
        nn.parallel.DistributedDataParallel(net)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 4)])
def test_sync_batch_norm_is_batch_norm(shape):
    x = RNG.standard_normal(shape)
    bn = nn.SyncBatchNorm(3, momentum=0.5, dtype=nerve.float64)
    out = bn(nerve.tensor(x)).numpy()
    axes = tuple(i for i in range(len(shape)) if i != 1)
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), atol=1e-12)
    n = x.size // 3
    np.testing.assert_allclose(bn.running_var.numpy(), 0.5 + 0.5 * x.var(axes) * n / (n - 1))


def test_convert_sync_batchnorm():
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    net[1].running_mean.fill_(0.25)
    weight = net[1].weight
    out = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert out is net and type(net[1]) is nn.SyncBatchNorm and type(net[2][1]) is nn.SyncBatchNorm
    assert net[1].weight is weight and np.all(net[1].running_mean.numpy() == 0.25)
    assert sorted(net.state_dict()) == sorted(k for k in net.state_dict())
    assert "1.num_batches_tracked" in net.state_dict()
    x = nerve.randn(2, 1, 5, 5)
    ref = nn.BatchNorm2d(3)
    ref.load_state_dict(net[1].state_dict())
    h = net[0](x)
    np.testing.assert_allclose(net[1](h).detach().numpy(), ref(h).detach().numpy(), atol=1e-6)


def test_clip_grad_keywords():
    """PyTorch's foreach= is accepted (no effect); error_if_nonfinite raises on an infinite norm."""
    p = nn.Parameter(nerve.tensor([3.0, 4.0]))
    p.grad = nerve.tensor([3.0, 4.0])
    total = nn.utils.clip_grad_norm_([p], max_norm=1.0, foreach=True)
    assert np.isclose(total.item(), 5.0) and np.allclose(p.grad.numpy(), [0.6, 0.8], atol=1e-6)
    nn.utils.clip_grad_value_([p], 0.7, foreach=None)
    assert np.allclose(p.grad.numpy(), [0.6, 0.7])
    p.grad = nerve.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True, foreach=False)


def test_small_compatibility_names():
    """Names PyTorch code touches for isinstance checks or by their deprecated spelling."""
    assert isinstance(nn.LSTM(2, 3), nn.RNNBase) and isinstance(nn.GRUCell(2, 3), nn.RNNCellBase)
    lazy = nn.LazyLinear(2)
    assert not any(isinstance(p, nn.UninitializedParameter) for p in lazy.parameters())
    assert not nn.parameter.is_lazy(nn.Parameter(nerve.zeros(1)))
    with pytest.raises(TypeError, match="UninitializedParameter: nerve's lazy modules"):
        nn.UninitializedParameter()
    layer = nn.utils.skip_init(nn.Linear, 3, 4, bias=False)
    assert layer.weight.shape == (4, 3) and layer.bias is None
    p = nn.Parameter(nerve.tensor([3.0, 4.0]))
    p.grad = nerve.tensor([3.0, 4.0])
    assert np.isclose(nn.utils.clip_grad_norm([p], 1.0).item(), 5.0) and np.isclose(p.grad.numpy()[0], 0.6)
