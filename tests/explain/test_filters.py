"""nerve.explain.filters: first-layer filters and feature maps as image grids and matplotlib figures."""
import numpy as np
import pytest

import nerve
from nerve import explain, nn
from nerve.models import CNN1d, SmallCNN


def test_filter_grid_tiles_the_first_conv_filters():
    nerve.manual_seed(0)
    model = SmallCNN()
    grid = explain.filter_grid(model)
    assert grid.shape == (6 * 4 + 1, 6 * 4 + 1)  # 32 filters of 3x3 on a 6-wide grid, 1-pixel gaps
    w = model[0].weight.numpy()[5, 0].astype(np.float64)
    tile = grid[1:4, 1 + 5 * 4:4 + 5 * 4]
    np.testing.assert_allclose(tile, (w - w.min()) / (w.max() - w.min()))
    assert grid.min() >= 0 and grid.max() <= 1
    assert explain.first_conv(model) is model[0]


def test_filter_grid_rgb_multichannel_1d_and_transposed():
    rgb = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU())
    assert explain.filter_grid(rgb).shape == (2 * 6 + 1, 2 * 6 + 1, 3)
    multi = nn.Conv2d(2, 3, 3)  # one row per filter, one column per input channel
    assert explain.filter_grid(multi).shape == (3 * 4 + 1, 2 * 4 + 1)
    assert explain.filter_grid(CNN1d()).shape == (5 * 2 + 1, 5 * 6 + 1)  # 25 kernels of 1x5
    assert explain.filter_grid(nn.ConvTranspose2d(4, 1, 3)).shape == (1 * 4 + 1, 4 * 4 + 1)  # one output filter
    with pytest.raises(ValueError, match="has no convolution layer"):
        explain.filter_grid(nn.Linear(2, 3))


def test_image_grid_options():
    tiles = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    raw = explain.image_grid(tiles, ncols=2, padding=0, normalize=None)
    np.testing.assert_array_equal(raw, np.concatenate(list(tiles), axis=1))
    together = explain.image_grid(tiles, ncols=1, padding=0, normalize="all")
    assert together.min() == 0 and together.max() == 1 and together[2, 0] > together[1, 2]
    with pytest.raises(ValueError, match="expected tiles"):
        explain.image_grid(np.zeros((3, 3)))


def test_feature_maps_at_any_layer():
    nerve.manual_seed(0)
    model = SmallCNN()
    model.train()
    x = nerve.rand(1, 28, 28)
    first = explain.feature_maps(model, x, 0)
    np.testing.assert_allclose(first, model[0](x.unsqueeze(0)).numpy()[0], rtol=1e-6)
    relu = explain.feature_maps(model, x.unsqueeze(0), "3")
    assert relu.shape == (64, 24, 24) and relu.min() >= 0
    pooled = explain.feature_maps(model, x.numpy(), model[4])
    assert pooled.shape == (64, 12, 12)
    assert model.training and model[0].training  # modes restored
    assert explain.feature_map_grid(model, x, 2, max_maps=16).shape == (4 * 25 + 1, 4 * 25 + 1)
    assert explain.feature_map_grid(CNN1d(), nerve.randn(1, 40), 1).shape == (5 * 2 + 1, 5 * 20 + 1)
    with pytest.raises(KeyError, match="no layer named 'conv9'"):
        explain.feature_maps(model, x, "conv9")
    with pytest.raises(ValueError, match="expected one example"):
        explain.feature_maps(model, nerve.rand(2, 1, 28, 28), 0)


def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    model = SmallCNN()
    fig = explain.plot_filters(model, path=tmp_path / "filters.png")
    assert (tmp_path / "filters.png").stat().st_size > 0
    fig2 = explain.plot_feature_maps(model, nerve.rand(1, 28, 28), 1, path=tmp_path / "maps.png", max_maps=8)
    assert (tmp_path / "maps.png").stat().st_size > 0
    plt.close(fig)
    plt.close(fig2)
