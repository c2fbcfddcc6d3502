"""Reference GAN models: shapes, parameter counts, conditional inputs, spectral norm variants, state-dict round
trips and their errors."""
import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.models.gan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_mlp_shapes_and_counts():
    G, D = MLPGenerator(3, 2, hidden=(5, 4)), MLPDiscriminator(2, hidden=(6,))
    assert G(nerve.randn(7, 3)).shape == (7, 2) and D(nerve.randn(7, 2)).shape == (7,)
    assert n_params(G) == (3 * 5 + 5) + (5 * 4 + 4) + (4 * 2 + 2)
    assert n_params(D) == (2 * 6 + 6) + (6 + 1)
    Gc = MLPGenerator(3, 2, hidden=(5,), num_classes=4)
    assert n_params(Gc) == (7 * 5 + 5) + (5 * 2 + 2)
    y = nerve.tensor([0, 3, 1])
    # the class enters as a one-hot vector appended to z
    z = nerve.randn(3, 3)
    joined = nerve.tensor(np.concatenate([z.numpy(), np.eye(4)[[0, 3, 1]]], 1).astype(np.float32))
    np.testing.assert_allclose(Gc(z, y).numpy(), Gc.net(joined).numpy(), rtol=1e-6)
    assert Gc(z, y).shape == (3, 2)


def test_dcgan_shapes_counts_and_round_trip():
    nerve.manual_seed(0)
    G, D = DCGANGenerator(16, width=8), DCGANDiscriminator(width=8)
    x = G(nerve.randn(4, 16))
    assert x.shape == (4, 1, 28, 28) and float(x.abs().max()) <= 1.0
    assert D(x).shape == (4,)
    assert n_params(G) == 16 * 784 + 2 * 784 + 16 * 8 * 16 + 2 * 8 + 8 * 16 + 1
    assert n_params(D) == (16 * 8 + 8) + 8 * 16 * 16 + 2 * 16 + (16 * 49 + 1)
    G2 = DCGANGenerator(**G.get_config())
    G2.load_state_dict(G.state_dict())
    G.eval()
    G2.eval()
    z = nerve.randn(2, 16)
    np.testing.assert_array_equal(G(z).numpy(), G2(z).numpy())


def test_conditional_and_spectral_discriminators():
    nerve.manual_seed(0)
    D = DCGANDiscriminator(width=4, num_classes=10, spectral_norm=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert sorted(k for k in D.state_dict() if k.endswith("_u")) == ["net.0.weight_u", "net.2.weight_u",
                                                                      "net.5.weight_u"]
    x, y = nerve.randn(3, 1, 28, 28), nerve.tensor([1, 2, 9])
    s = D(x, y)
    assert s.shape == (3,)
    assert not np.allclose(s.numpy(), D(x, nerve.tensor([0, 0, 0])).numpy())
    assert DCGANGenerator(8, width=4, num_classes=10)(nerve.randn(3, 8), y).shape == (3, 1, 28, 28)


def test_model_errors():
    with pytest.raises(ValueError, match="built with num_classes=10, so it needs class labels"):
        DCGANGenerator(8, width=4, num_classes=10)(nerve.randn(2, 8))
    with pytest.raises(ValueError, match="got class labels but was built without num_classes"):
        MLPGenerator(2, 2)(nerve.randn(2, 2), nerve.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"one label per sample, shape \(2,\), got \(3,\)"):
        MLPDiscriminator(2, num_classes=3)(nerve.randn(2, 2), nerve.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"expected images \(N, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        DCGANDiscriminator(width=4)(nerve.randn(2, 1, 32, 32))
