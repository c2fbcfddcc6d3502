"""nerve.fft's PyTorch conventions: dtypes, defaults, complex leaves (a closed-form gradient), frequencies, shifts,
the complex Tensor attributes, and errors naming the function and the values."""
import numpy as np
import pytest

import nerve
import nerve.fft as F

RNG = np.random.default_rng(0)


def test_complex_leaf_gradient_matches_parseval():
    """sum |fft(z)|^2 = n sum |z|^2, so PyTorch's convention gives the gradient 2 n z (and 2 z with 'ortho')."""
    z0 = RNG.standard_normal(6) + 1j * RNG.standard_normal(6)
    for norm, scale in (("backward", 12.0), ("ortho", 2.0), ("forward", 2.0 / 6)):
        z = nerve.tensor(z0, requires_grad=True)
        (F.fft(z, norm=norm).abs() ** 2).sum().backward()
        np.testing.assert_allclose(z.grad.numpy(), scale * z0, rtol=1e-12)


def test_real_input_gets_a_real_gradient():
    x = nerve.tensor(RNG.standard_normal(8), requires_grad=True)
    F.fft(x).real.sum().backward()  # sum_k Re X_k = n x_0
    assert x.grad.dtype == nerve.float64
    np.testing.assert_allclose(x.grad.numpy(), [8, 0, 0, 0, 0, 0, 0, 0], atol=1e-12)


def test_dtypes_follow_pytorch():
    x32 = nerve.tensor(RNG.standard_normal((2, 4)), dtype=nerve.float32)
    assert F.fft(x32).dtype == nerve.complex64 and F.rfft(x32).dtype == nerve.complex64
    assert F.irfft(F.rfft(x32)).dtype == nerve.float32 and F.hfft(F.ihfft(x32)).dtype == nerve.float32
    assert F.fft(nerve.arange(4)).dtype == nerve.complex64  # integers: the default float first
    assert F.fft(nerve.tensor(RNG.standard_normal(4))).dtype == nerve.complex128
    np.testing.assert_allclose(F.fft([1.0, 2.0, 3.0]).numpy(), np.fft.fft([1.0, 2.0, 3.0]), rtol=1e-6)


def test_default_lengths_and_dims():
    z = nerve.tensor(np.fft.rfft(RNG.standard_normal((3, 5, 8))))
    assert F.irfft(z).shape == (3, 5, 8) and F.irfftn(z).shape == (3, 5, 8) and F.irfft2(z).shape == (3, 5, 8)
    assert F.fftn(z, s=(4, 2)).shape == (3, 4, 2)  # s without dim: the last len(s) dims
    assert F.rfft2(nerve.ones(2, 3, 6)).shape == (2, 3, 4)
    np.testing.assert_allclose(F.ifft(F.fft(z, dim=1), dim=1).numpy(), z.numpy(), atol=1e-12)


def test_frequencies_and_shifts():
    for n in (5, 6):
        np.testing.assert_allclose(F.fftfreq(n, d=0.1).numpy(), np.fft.fftfreq(n, d=0.1), rtol=1e-6)
        np.testing.assert_allclose(F.rfftfreq(n, 2.0).numpy(), np.fft.rfftfreq(n, 2.0), rtol=1e-6)
    assert F.fftfreq(4).dtype == nerve.get_default_dtype()
    assert F.fftfreq(4, dtype=nerve.float64).dtype == nerve.float64 and F.rfftfreq(4, requires_grad=True).requires_grad
    x = RNG.standard_normal((3, 4))
    np.testing.assert_allclose(F.fftshift(nerve.tensor(x)).numpy(), np.fft.fftshift(x))
    np.testing.assert_allclose(F.ifftshift(nerve.tensor(x), dim=(0,)).numpy(), np.fft.ifftshift(x, axes=(0,)))


def test_complex_attributes_and_methods():
    z = nerve.tensor(np.array([1 + 2j, -3 - 1j]))
    assert z.real.tolist() == [1.0, -3.0] and z.imag.tolist() == [2.0, -1.0]
    assert z.conj().tolist() == [1 - 2j, -3 + 1j] and not z.is_conj()
    x = nerve.tensor([1.0, -2.0])
    assert x.real is x and nerve.conj(x) is x
    np.testing.assert_allclose(x.angle().numpy(), [0, np.pi], rtol=1e-6)
    np.testing.assert_allclose(nerve.view_as_real(z).numpy(), [[1, 2], [-3, -1]])
    np.testing.assert_allclose(nerve.view_as_complex(nerve.view_as_real(z)).numpy(), z.numpy())
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex dtypes"):
        x.imag
    with pytest.raises(TypeError, match="complex: expected real and imag of the same floating dtype"):
        nerve.complex(nerve.tensor([1.0]), nerve.tensor([1.0], dtype=nerve.float64))


def test_errors_name_function_and_values():
    x = nerve.ones(4)
    with pytest.raises(ValueError, match="fft.fft: invalid normalization mode 'unit'"):
        F.fft(x, norm="unit")
    with pytest.raises(IndexError, match=r"fft.rfft: dim 3 is out of range for a tensor of shape \(4,\)"):
        F.rfft(x, dim=3)
    with pytest.raises(RuntimeError, match=r"fft.fft: invalid number of data points \(0\)"):
        F.fft(x, n=0)
    with pytest.raises(RuntimeError, match="fft.rfft expects a real input tensor"):
        F.rfft(F.fft(x))
    with pytest.raises(RuntimeError, match=r"fft.fft2: s \(2, 2, 2\) and dim \(0, 1\) must have the same length"):
        F.fft2(nerve.ones(2, 2), s=(2, 2, 2))


def test_spectral_filter_gradients_through_complex_products():
    """irfft(rfft(x) * H / (|H| + 1)) with H = complex(hr, hi): Mul and Div take the conjugate of the other factor
    (PyTorch's convention), checked by finite differences of the real composition."""
    x = nerve.tensor(RNG.standard_normal(8), requires_grad=True)
    hr = nerve.tensor(RNG.standard_normal(5), requires_grad=True)
    hi = nerve.tensor(RNG.standard_normal(5), requires_grad=True)

    def filtered(x, hr, hi):
        h = nerve.complex(hr, hi)
        return F.irfft(F.rfft(x) * h / (h.abs() + 1.0), n=8)
    assert nerve.gradcheck(filtered, [x, hr, hi])
    assert nerve.gradgradcheck(lambda x, hr, hi: F.irfft(F.rfft(x) * nerve.complex(hr, hi), n=8), [x, hr, hi])


def test_complex_product_leaf_gradient_closed_form():
    """|a z|^2 summed has the gradient 2 |a|^2 z under PyTorch's convention; a real factor gets Re(conj(g) ...)."""
    z0 = RNG.standard_normal(4) + 1j * RNG.standard_normal(4)
    a0 = RNG.standard_normal(4) + 1j * RNG.standard_normal(4)
    z = nerve.tensor(z0, requires_grad=True)
    (nerve.tensor(a0) * z).abs().pow(2).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), 2 * np.abs(a0) ** 2 * z0, rtol=1e-12)
    r = nerve.tensor(np.ones(4), requires_grad=True)  # d/dr |r a|^2 = 2 r |a|^2 for a real r
    (r * nerve.tensor(a0)).abs().pow(2).sum().backward()
    assert r.grad.dtype == nerve.float64
    np.testing.assert_allclose(r.grad.numpy(), 2 * np.abs(a0) ** 2, rtol=1e-12)


def test_complex_matmul_gradient_uses_the_conjugate_transpose():
    """A DFT as a complex matrix product: its gradient equals fft's (the adjoint is the conjugate transpose)."""
    n = 6
    dft = nerve.tensor(np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n))
    w = nerve.tensor(RNG.standard_normal(n) + 1j * RNG.standard_normal(n))
    z0 = RNG.standard_normal(n) + 1j * RNG.standard_normal(n)
    z1, z2 = nerve.tensor(z0, requires_grad=True), nerve.tensor(z0, requires_grad=True)
    ((dft @ z1) * w).real.sum().backward()
    (F.fft(z2) * w).real.sum().backward()
    np.testing.assert_allclose(z1.grad.numpy(), z2.grad.numpy(), atol=1e-12)
    x = nerve.tensor(RNG.standard_normal((n, 2)), requires_grad=True)  # a real operand: the real part
    assert nerve.gradcheck(lambda x: nerve.view_as_real(dft @ x), [x])


HOLOMORPHIC = [("exp", np.exp), ("log", lambda z: 1 / z), ("sqrt", lambda z: 0.5 / np.sqrt(z)), ("sin", np.cos),
               ("cos", lambda z: -np.sin(z)), ("tanh", lambda z: 1 - np.tanh(z) ** 2), ("expm1", np.exp),
               ("log1p", lambda z: 1 / (1 + z)), ("rsqrt", lambda z: -0.5 * z ** -1.5)]


@pytest.mark.parametrize("name,derivative", HOLOMORPHIC, ids=[h[0] for h in HOLOMORPHIC])
def test_holomorphic_functions_take_the_conjugate_derivative(name, derivative):
    """For holomorphic f and L = Re(sum w f(z)), PyTorch's gradient is conj(w f'(z))."""
    z0 = (RNG.standard_normal(4) + 1j * RNG.standard_normal(4)) * 0.5 + 1.5
    w = RNG.standard_normal(4) + 1j * RNG.standard_normal(4)
    z = nerve.tensor(z0, requires_grad=True)
    (getattr(nerve, name)(z) * nerve.tensor(w)).real.sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), np.conj(w * derivative(z0)), rtol=1e-10)


def test_powers_and_phase_rotation():
    z0 = RNG.standard_normal(3) + 1j * RNG.standard_normal(3)
    for p in (2, 3, -1.5):
        z = nerve.tensor(z0, requires_grad=True)
        (z ** p).real.sum().backward()
        np.testing.assert_allclose(z.grad.numpy(), np.conj(p * z0 ** (p - 1)), rtol=1e-10)
    theta = nerve.tensor(RNG.standard_normal(4), requires_grad=True)
    assert (theta * 1j).dtype == nerve.complex128  # a complex number with float64: complex128, as PyTorch
    assert nerve.gradcheck(lambda t: nerve.view_as_real(nerve.exp(1j * t)), [theta])
