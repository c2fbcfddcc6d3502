"""Pooling and upsampling layers: shapes, configs, and errors; each layer equals its functional form. The ops
and compositions behind them are checked in tests/ops/test_pool.py and tests/functional/test_spatial.py."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn


def test_pooling_layers_shapes_configs_and_errors():
    x = nerve.randn(2, 3, 8, 6)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 3)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.shape == out.shape and idx.dtype == np.int64
    assert nn.AvgPool2d(3, stride=1, padding=1)(x).shape == (2, 3, 8, 6)
    assert nn.AdaptiveAvgPool2d((1, 1))(x).shape == (2, 3, 1, 1)
    assert nn.AdaptiveMaxPool2d((None, 2))(x).shape == (2, 3, 8, 2)
    assert nn.MaxPool1d(2)(nerve.randn(2, 3, 7)).shape == (2, 3, 3)
    assert nn.AvgPool1d(2)(nerve.randn(3, 7)).shape == (3, 3)
    assert nn.AdaptiveAvgPool1d(2)(nerve.randn(2, 3, 7)).shape == (2, 3, 2)
    assert nn.AdaptiveMaxPool1d(3)(nerve.randn(2, 3, 7)).shape == (2, 3, 3)
    assert nn.MaxPool2d(3, 2, 1).get_config() == {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1,
                                                  "return_indices": False, "ceil_mode": False}
    assert sum(1 for _ in nn.MaxPool2d(2).parameters()) == 0
    with pytest.raises(RuntimeError, match=r"max_pool2d: expected input \(N, C, H, W\) or \(C, H, W\), got \(2, 3\)"):
        nn.MaxPool2d(2)(nerve.randn(2, 3))


def test_layers_equal_their_functions():
    x = nerve.randn(2, 3, 9, 7)
    pairs = [(nn.MaxPool2d(3, 2, 1, ceil_mode=True), F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
             (nn.AvgPool2d(3, 2, 1, count_include_pad=False), F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
             (nn.AdaptiveAvgPool2d((2, 3)), F.adaptive_avg_pool2d(x, (2, 3))),
             (nn.AdaptiveMaxPool2d(4), F.adaptive_max_pool2d(x, 4))]
    for layer, want in pairs:
        np.testing.assert_array_equal(layer(x).numpy(), want.numpy())


def test_upsample_layers():
    img = nerve.randn(1, 2, 3, 4)
    assert nn.Upsample(scale_factor=2)(img).shape == (1, 2, 6, 8)
    np.testing.assert_allclose(nn.UpsamplingBilinear2d(size=(5, 5))(img).numpy(),
                               F.interpolate(img, size=(5, 5), mode="bilinear", align_corners=True).numpy())
    np.testing.assert_allclose(nn.UpsamplingNearest2d(scale_factor=3)(img).numpy(),
                               img.numpy().repeat(3, 2).repeat(3, 3))
    assert nn.Upsample(size=(4, 4), mode="bilinear").get_config() == {
        "size": [4, 4], "scale_factor": None, "mode": "bilinear", "align_corners": None}
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nn.Upsample()
