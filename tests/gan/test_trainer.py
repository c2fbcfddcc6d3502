"""The GAN step and trainer: one step moves D and G by minus the learning rate times their loss gradients (NumPy
by hand for linear networks), n_critic, checkpoint resume, errors at the start, NaN and collapse stops, a
conditional GAN, sampling, and small tasks that must be learned."""
import numpy as np
import pytest

import nerve
from nerve import nn, optim
from nerve.gan import GAN, GANModel, gan_step
from nerve.models.gan import MLPDiscriminator, MLPGenerator


def softplus(x):
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def linear_gan():
    G, D = nn.Linear(3, 2).double(), nn.Linear(2, 1).double()
    return G, D, GANModel(G, D, 3)


def test_one_step_moves_both_networks_down_their_own_gradients():
    nerve.manual_seed(0)
    G, D, model = linear_gan()
    A, b = G.weight.numpy().copy(), G.bias.numpy().copy()
    w, c = D.weight.numpy()[0].copy(), D.bias.numpy()[0].copy()
    real = np.random.default_rng(1).standard_normal((5, 2)) + 3.0
    lr = 0.1
    opt = {"generator": optim.SGD(G.parameters(), lr=lr), "discriminator": optim.SGD(D.parameters(), lr=lr)}
    nerve.manual_seed(7)
    logs = gan_step("non_saturating")(model, (nerve.tensor(real, dtype=nerve.float64),), opt)
    nerve.manual_seed(7)
    z = nerve.randn(5, 3, dtype=nerve.float64).numpy()  # the step's draw

    # D: mean softplus(-D(x)) + mean softplus(D(G(z))), D(x) = x w + c
    fake = z @ A.T + b
    r, f = real @ w + c, fake @ w + c
    d_loss = softplus(-r).mean() + softplus(f).mean()
    gw = (-sigmoid(-r)[:, None] * real).mean(0) + (sigmoid(f)[:, None] * fake).mean(0)
    gc = -sigmoid(-r).mean() + sigmoid(f).mean()
    w2, c2 = w - lr * gw, c - lr * gc
    np.testing.assert_allclose(D.weight.numpy()[0], w2, rtol=1e-12)
    np.testing.assert_allclose(D.bias.numpy()[0], c2, rtol=1e-12)
    assert logs["d_loss"] == pytest.approx(d_loss, rel=1e-12)
    assert logs["d_real"] == pytest.approx(sigmoid(r).mean()) and logs["d_fake"] == pytest.approx(sigmoid(f).mean())

    # G: mean softplus(-D'(G(z))) against the updated D'
    f2 = fake @ w2 + c2
    g_loss = softplus(-f2).mean()
    dfake = -sigmoid(-f2)[:, None] * w2[None, :] / len(z)
    np.testing.assert_allclose(G.weight.numpy(), A - lr * dfake.T @ z, rtol=1e-12)
    np.testing.assert_allclose(G.bias.numpy(), b - lr * dfake.sum(0), rtol=1e-12)
    assert logs["g_loss"] == pytest.approx(g_loss, rel=1e-12)
    # and each network's own loss went down
    assert softplus(-(real @ w2 + c2)).mean() + softplus(fake @ w2 + c2).mean() < d_loss
    fake3 = z @ G.weight.numpy().T + G.bias.numpy()
    assert softplus(-(fake3 @ w2 + c2)).mean() < g_loss


def test_n_critic_updates_the_generator_every_nth_batch():
    nerve.manual_seed(0)
    G, D, model = linear_gan()
    opt = (optim.SGD(G.parameters(), lr=0.1), optim.SGD(D.parameters(), lr=0.1))
    step = gan_step("wgan-gp", n_critic=3)
    real = nerve.randn(4, 2, dtype=nerve.float64)
    changed = []
    for _ in range(6):
        before = G.weight.numpy().copy()
        logs = step(model, real, opt)
        changed.append(not np.array_equal(before, G.weight.numpy()))
        assert ("g_loss" in logs) == changed[-1] and "gp" in logs
    assert changed == [False, False, True, False, False, True]
    assert int(model.steps.item()) == 6


def ring_data(n, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0]])
    return (centers[rng.integers(0, 2, n)] + 0.1 * rng.standard_normal((n, 2))).astype(np.float32)


def small_gan(**kwargs):
    return GAN(MLPGenerator(4, 2, hidden=(16,)), MLPDiscriminator(2, hidden=(16,)), **kwargs)


def test_resume_continues_exactly(tmp_path):
    data = ring_data(96)
    nerve.manual_seed(3)
    straight = small_gan(ema_decay=0.9, instance_noise=0.1, instance_noise_steps=20)
    h1 = straight.fit(data, epochs=2, batch_size=16, verbose=0)
    nerve.manual_seed(3)
    first = small_gan(ema_decay=0.9, instance_noise=0.1, instance_noise_steps=20)
    first.fit(data, epochs=1, batch_size=16, verbose=0, checkpoint=tmp_path / "gan.ckpt")
    nerve.manual_seed(99)  # resume restores the random state, the weights, both optimisers and the counters
    second = small_gan(ema_decay=0.9, instance_noise=0.1, instance_noise_steps=20)
    h2 = second.fit(data, epochs=2, batch_size=16, verbose=0, checkpoint=tmp_path / "gan.ckpt", resume=True)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), second.model.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()), err_msg=name)
    assert h1.history == h2.history
    assert set(h1.history) == {"d_loss", "g_loss", "d_real", "d_fake"}


def test_errors_at_the_start():
    data = ring_data(8)
    with pytest.raises(ValueError, match=r"samples of shape \(3,\) but the data's are \(2,\)"):
        GAN(MLPGenerator(4, 3), MLPDiscriminator(2)).fit(data, verbose=0)
    with pytest.raises(ValueError, match=r"one score per sample, shape \(2,\) or \(2, 1\), got \(2, 2\)"):
        GAN(MLPGenerator(4, 2), nn.Linear(2, 2), latent_dim=4).fit(data, verbose=0)
    with pytest.raises(ValueError, match="latent_dim=5 but the generator MLPGenerator takes latent_dim=4"):
        GAN(MLPGenerator(4, 2), MLPDiscriminator(2), latent_dim=5)
    with pytest.raises(ValueError, match=r"generator Sequential failed on noise of shape \(2, 5\)"):
        GAN(nn.Sequential(nn.Linear(4, 2)), MLPDiscriminator(2), latent_dim=5).fit(data, verbose=0)
    with pytest.raises(ValueError, match="pass latent_dim="):
        GAN(nn.Sequential(nn.Linear(4, 2)), MLPDiscriminator(2))
    with pytest.raises(ValueError, match="n_critic must be an int >= 1"):
        GAN(MLPGenerator(4, 2), MLPDiscriminator(2), n_critic=0)
    conditional = GAN(MLPGenerator(4, 2, num_classes=2), MLPDiscriminator(2, num_classes=2), num_classes=2)
    with pytest.raises(ValueError, match=r"needs \(samples, labels\) batches"):
        conditional.fit(data, verbose=0)
    with pytest.raises(TypeError, match="must be a nerve.gan.GANModel"):
        nerve.train.fit(nn.Linear(2, 1), data, optimizer=[], train_step=gan_step(), verbose=0)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nan_stops_the_run_naming_the_loss(capsys):
    nerve.manual_seed(0)
    G = MLPGenerator(4, 2, hidden=(8,))
    G.net[-1].weight.data[...] = np.nan
    gan = GAN(G, MLPDiscriminator(2, hidden=(8,)))
    history = gan.fit(ring_data(64), epochs=3, batch_size=16, verbose=0)
    out = capsys.readouterr().out
    assert "TerminateOnNaN: d_loss became nan at epoch 1, batch 1" in out
    assert len(history.history["d_loss"]) == 1


def test_collapse_is_reported_and_stops_the_run(capsys):
    # D separates real (x = +5) from a frozen generator's output (x = -5) perfectly: d_loss -> 0 and stays.
    nerve.manual_seed(0)
    G = MLPGenerator(4, 2, hidden=(8,))
    nn.init.zeros_(G.net[-1].weight)
    G.net[-1].bias.data[...] = -5.0
    D = nn.Linear(2, 1)
    D.weight.data[...] = 20.0
    gan = GAN(G, D, latent_dim=4, g_lr=0.0, collapse_patience=5)
    data = np.full((160, 2), 5.0, np.float32)
    with pytest.warns(RuntimeWarning, match="d_loss below 0.001 for 5 steps"):
        gan.fit(data, epochs=2, batch_size=16, verbose=0)
    assert "GAN diverged" in capsys.readouterr().out
    assert int(gan.model.steps.item()) == 5


def test_learns_a_gaussian_and_samples_reproducibly():
    # 300 steps move G's samples from near the origin to near N((3, -1), 0.5^2); GAN training still swings
    # (the x mean lands between 3.5 and 4.5 over seeds), so the bound is loose but far from the start.
    target = np.array([3.0, -1.0])
    X = (target + 0.5 * np.random.default_rng(0).standard_normal((64 * 300, 2))).astype(np.float32)
    nerve.manual_seed(0)
    gan = small_gan(g_lr=1e-3, d_lr=1e-3, ema_decay=0.95)
    start = gan.sample(1000, generator=1).numpy()
    gan.fit(X, epochs=1, batch_size=64, verbose=0)
    x = gan.sample(1000, generator=1).numpy()
    np.testing.assert_array_equal(x, gan.sample(1000, generator=1).numpy())
    assert np.linalg.norm(start.mean(0) - target) > 2.0
    assert np.linalg.norm(x.mean(0) - target) < 1.5 and 0.2 < x.std(0).min() and x.std(0).max() < 2.0


def test_conditional_gan_learns_the_class_to_mode_map():
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64 * 300)
    x = (np.where(y[:, None] == 0, -2.0, 2.0) + 0.1 * rng.standard_normal((len(y), 1))).astype(np.float32)
    gan = GAN(MLPGenerator(4, 1, hidden=(16,), num_classes=2), MLPDiscriminator(1, hidden=(16,), num_classes=2),
              num_classes=2, g_lr=2e-3, d_lr=2e-3)
    gan.fit((x, y), epochs=1, batch_size=64, verbose=0)
    samples = gan.sample(200, generator=0).numpy()[:, 0]  # labels 0, 1, 0, 1, ...
    assert samples[0::2].mean() < -1.0 and samples[1::2].mean() > 1.0
    ones = gan.sample(50, labels=nerve.ones(50).long(), generator=0).numpy()
    assert ones.mean() > 1.0


def test_interpolation_runs_from_one_sample_to_another():
    nerve.manual_seed(0)
    gan = small_gan()
    path = gan.interpolate(steps=5, pairs=2, generator=4)
    assert path.shape == (10, 2)
    ends = gan.model.noise(4, generator=4)
    np.testing.assert_allclose(path.numpy()[[0, 4, 5, 9]],
                               gan.model.sample(4, z=ends[[0, 2, 1, 3]]).numpy(), rtol=1e-5, atol=1e-6)


def test_stock_step_in_a_users_fit():
    nerve.manual_seed(0)
    G, D = MLPGenerator(4, 2, hidden=(8,)), MLPDiscriminator(2, hidden=(8,))
    model = GANModel(G, D, latent_dim=4)
    opt = {"generator": optim.Adam(G.parameters(), 1e-3), "discriminator": optim.Adam(D.parameters(), 1e-3)}
    history = nerve.train.fit(model, ring_data(64), optimizer=opt, train_step=gan_step("hinge", penalty="r1"),
                              epochs=2, batch_size=16, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake", "r1"}
    assert all(np.isfinite(v).all() for v in history.history.values())


def test_train_dcgan_writes_its_run_directory_and_resumes(tmp_path):
    from nerve.gan import train_dcgan

    images = np.random.default_rng(0).integers(0, 256, (16, 784)).astype(np.uint8)
    nerve.manual_seed(0)
    train_dcgan(images, tmp_path, epochs=1, batch_size=8, width=4, latent_dim=8, verbose=0)
    names = {"samples_epoch_01.png", "history.csv", "checkpoint.safetensors", "generator.safetensors",
             "samples.png", "interpolation.png"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    gan = train_dcgan(images, tmp_path, epochs=2, batch_size=8, width=4, latent_dim=8, verbose=0, resume=True)
    assert int(gan.model.steps.item()) == 4 and (tmp_path / "samples_epoch_02.png").exists()
    assert len((tmp_path / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    with pytest.raises(ValueError, match=r"expected 28x28 images .* got shape \(3, 10\)"):
        train_dcgan(np.zeros((3, 10)), tmp_path)


def test_as_images_scales_to_the_tanh_range():
    from nerve.gan.run import as_images

    np.testing.assert_allclose(as_images(np.array([[0, 1, 255] + [0] * 781], np.uint8)).ravel()[:3],
                               [-1.0, -1.0 + 2 / 255, 1.0], rtol=1e-6)
    np.testing.assert_allclose(as_images(np.full((2, 28, 28), 0.25)), -0.5)
