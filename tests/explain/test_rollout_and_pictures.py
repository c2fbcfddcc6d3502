"""Attention rollout against a plain loop; the pictures (PNG files written and non-empty); the fit callback that
saves attribution maps; maps by method name."""
import numpy as np
import pytest

import nerve
from nerve import explain, nn


def rollout_loop(maps):
    """Abnar & Zuidema's rollout written out per example: mean over heads, 0.5 A + 0.5 I, rows normalised, then
    the product from the first layer up."""
    n, length = maps[0].shape[0], maps[0].shape[-1]
    out = np.zeros((n, length, length))
    for e in range(n):
        r = np.eye(length)
        for a in maps:
            m = a[e].mean(axis=0) * 0.5 + 0.5 * np.eye(length)
            for i in range(length):
                m[i] /= m[i].sum()
            r = m @ r
        out[e] = r
    return out


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 16)
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 3)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


def test_rollout_matches_a_loop_and_rows_sum_to_one():
    rng = np.random.default_rng(0)
    maps = [rng.random((2, 3, 5, 5)) for _ in range(3)]
    maps = [m / m.sum(-1, keepdims=True) for m in maps]
    np.testing.assert_allclose(explain.rollout(maps), rollout_loop(maps), atol=1e-12)
    np.testing.assert_allclose(explain.rollout(maps, discard_ratio=0.5).sum(-1), 1.0)
    np.testing.assert_allclose(explain.rollout(maps, head_fusion="max", residual=False).sum(-1), 1.0)
    with pytest.raises(ValueError, match="rollout: map 0 has shape"):
        explain.rollout([np.ones((2, 5, 5))])
    with pytest.raises(ValueError, match="head_fusion must be one of"):
        explain.rollout(maps, head_fusion="median")


def test_attention_rollout_of_a_transformer_uses_every_layer_in_eval_mode():
    nerve.manual_seed(0)
    model = Encoder()
    tokens = np.random.default_rng(1).integers(0, 10, (2, 7))
    rolled = explain.attention_rollout(model, nerve.tensor(tokens))
    maps = [explain.attention_maps(model, nerve.tensor(tokens), layer=i) for i in range(3)]
    np.testing.assert_allclose(rolled, rollout_loop(maps), atol=1e-6)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="attention_rollout: Linear has no attention layers"):
        explain.attention_rollout(nn.Linear(2, 2), nerve.tensor(np.ones((1, 2))))


def test_pictures_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    images, maps = rng.random((3, 1, 8, 8)), rng.normal(size=(3, 1, 8, 8))
    path = tmp_path / "grid.png"
    explain.attribution_grid(images, {"a": maps, "b": np.abs(maps)}, labels=["x", "y", "z"], top_classes="123",
                             path=path, sign="all")
    assert path.stat().st_size > 2000
    heat = explain.normalize_attr(maps[0], "absolute_value", outlier_perc=2)
    assert heat.shape == (8, 8) and heat.min() >= 0 and heat.max() == 1.0
    ax = explain.plot_feature_attr(rng.normal(size=(4, 6)), [f"f{i}" for i in range(6)], top=4)
    assert len(ax.patches) == 4
    ax = explain.plot_text_attr(list("abcde"), rng.normal(size=5))
    assert [t.get_text() for t in ax.texts] == list("abcde")
    ax = explain.plot_rollout(explain.rollout([rng.random((1, 2, 4, 4))])[0], tokens=list("wxyz"), row=3)
    ax.figure.savefig(tmp_path / "rollout.png")
    with pytest.raises(ValueError, match="plot_text_attr: 3 tokens for attributions of shape"):
        explain.plot_text_attr(list("abc"), np.ones(4))
    with pytest.raises(ValueError, match="visualize_image_attr: method 'blended_heat_map' needs original_image"):
        explain.visualize_image_attr(maps[0])
    import matplotlib.pyplot as plt
    plt.close("all")


def small_cnn():
    nerve.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 3))


@pytest.mark.parametrize("method", explain.METHOD_NAMES)
def test_every_named_method_gives_maps_of_the_inputs_shape(method):
    model = small_cnn()
    x = np.random.default_rng(0).random((2, 1, 8, 8)).astype(np.float32)
    maps = explain.attribution_maps(model, x, method, **({"n_steps": 8} if method == "integrated-gradients" else {}))
    assert maps.shape == x.shape and np.isfinite(maps).all() and np.abs(maps).sum() > 0


def test_attribution_logger_saves_the_maps_every_epoch(tmp_path):
    pytest.importorskip("matplotlib")
    model = small_cnn()
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 32)
    logger = explain.AttributionLogger(x[:4], tmp_path, method="saliency")
    nerve.train.fit(model, (x, y), loss="cross_entropy", optimizer=nerve.optim.Adam(model.parameters()), epochs=2,
                    batch_size=16, verbose=0, callbacks=[logger])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "attributions_epoch000.npy", "attributions_epoch000.png", "attributions_epoch001.npy",
        "attributions_epoch001.png"]
    saved = np.load(tmp_path / "attributions_epoch001.npy")
    np.testing.assert_allclose(saved, explain.attribution_maps(model, x[:4], "saliency"), rtol=1e-5)
    assert not np.allclose(logger.maps[0], logger.maps[1])  # the maps change as the network learns
    with pytest.raises(ValueError, match="AttributionLogger: method must be one of"):
        explain.AttributionLogger(x, tmp_path, method="lime")


def test_explain_to_png_for_images_and_tables(tmp_path):
    pytest.importorskip("matplotlib")
    model = small_cnn()
    x = np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)
    maps = explain.explain_to_png(model, x, tmp_path / "img.png", "integrated-gradients", n_steps=4)
    np.testing.assert_allclose(maps, explain.attribution_maps(model, x, "integrated-gradients", n_steps=4))
    assert (tmp_path / "img.png").stat().st_size > 2000
    nerve.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    rows = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    maps = explain.explain_to_png(mlp, rows, tmp_path / "tab.png", "input-x-gradient", class_names="abc")
    assert maps.shape == (4, 5) and (tmp_path / "tab.png").stat().st_size > 2000
    with pytest.raises(ValueError, match="last_conv: Sequential has no convolution layer"):
        explain.attribution_maps(mlp, rows, "grad-cam")
