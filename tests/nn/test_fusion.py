"""nn.utils.fuse_conv_bn_eval / fuse_linear_bn_eval equal the two layers in eval mode; get_total_norm and
clip_grads_with_norm_ against their closed forms."""
import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.nn import utils

RNG = np.random.default_rng(0)


def trained_bn(bn, x):
    bn.train()
    for _ in range(3):
        bn(x + nerve.tensor(RNG.standard_normal(x.shape)))
    with nerve.no_grad():
        bn.weight.copy_(nerve.tensor(RNG.uniform(0.5, 2, bn.weight.shape)))
        bn.bias.copy_(nerve.tensor(RNG.standard_normal(bn.bias.shape)))
    return bn.eval()


@pytest.mark.parametrize("transpose", [False, True])
def test_fuse_conv_bn(transpose):
    x = nerve.tensor(RNG.standard_normal((2, 3, 6, 6)))
    conv = (nn.ConvTranspose2d(3, 4, 3) if transpose else nn.Conv2d(3, 4, 3)).to(nerve.float64).eval()
    bn = trained_bn(nn.BatchNorm2d(4, dtype=nerve.float64), conv(x).detach())
    fused = utils.fuse_conv_bn_eval(conv, bn, transpose=transpose)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn(conv(x)).detach().numpy(), atol=1e-12)
    assert fused is not conv and isinstance(fused.weight, nn.Parameter)
    bn.train()
    with pytest.raises(RuntimeError, match="fuse_conv_bn_eval: fusing is only for eval mode"):
        utils.fuse_conv_bn_eval(conv, bn)


def test_fuse_linear_bn():
    x = nerve.tensor(RNG.standard_normal((5, 3)))
    lin = nn.Linear(3, 4, dtype=nerve.float64).eval()
    bn = trained_bn(nn.BatchNorm1d(4, dtype=nerve.float64), lin(x).detach())
    fused = utils.fuse_linear_bn_eval(lin, bn)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn(lin(x)).detach().numpy(), atol=1e-12)


def test_get_total_norm_and_clip_with_norm():
    a, b = RNG.standard_normal((3, 2)), RNG.standard_normal(4)
    for p in (1.0, 2.0, 3.0, float("inf")):
        expected = np.linalg.norm(np.concatenate([a.ravel(), b]), ord=p)
        assert np.isclose(utils.get_total_norm([nerve.tensor(a), nerve.tensor(b)], p).item(), expected)
    params = [nn.Parameter(nerve.tensor(a)), nn.Parameter(nerve.tensor(b))]
    for p, g in zip(params, (a, b)):
        p.grad = nerve.tensor(g.copy())
    total = utils.get_total_norm([p.grad for p in params])
    utils.clip_grads_with_norm_(params, 1.0, total)
    np.testing.assert_allclose(params[0].grad.numpy(), a / (total.item() + 1e-6))
    with pytest.raises(RuntimeError, match="get_total_norm: the total norm"):
        utils.get_total_norm([nerve.tensor([np.nan])], error_if_nonfinite=True)
