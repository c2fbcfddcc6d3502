"""nerve.fft and the complex ops (nerve/ops/spectral.py) as an op table: forward against numpy.fft, gradients by
gradcheck/gradgradcheck in float64. nerve's gradcheck is real, so complex values enter as complex(re, im) and
leave as view_as_real: the checks see the real-valued composition, whose finite differences are independent of
the complex gradient convention the rules use."""
import numpy as np

import nerve
import nerve.fft as F
from tests.ops.table import Case, table_tests


def vr(z):
    return nerve.view_as_real(z)


def nvr(z):
    return np.stack([z.real, z.imag], -1)


def C(re, im):
    return nerve.complex(re, im)


R2C = [  # (name, nerve fn of a real tensor, numpy fn, shape)
    ("fft", lambda x: F.fft(x), np.fft.fft, (5,)),
    ("fft_n_pad", lambda x: F.fft(x, n=7, norm="ortho"), lambda x: np.fft.fft(x, n=7, norm="ortho"), (2, 5)),
    ("fft_n_trim_dim0", lambda x: F.fft(x, n=3, dim=0, norm="forward"),
     lambda x: np.fft.fft(x, n=3, axis=0, norm="forward"), (5, 2)),
    ("ifft_real", lambda x: F.ifft(x), np.fft.ifft, (4,)),
    ("rfft_even", lambda x: F.rfft(x), np.fft.rfft, (2, 6)),
    ("rfft_odd", lambda x: F.rfft(x, norm="ortho"), lambda x: np.fft.rfft(x, norm="ortho"), (5,)),
    ("rfft_n_pad", lambda x: F.rfft(x, n=8), lambda x: np.fft.rfft(x, n=8), (5,)),
    ("rfft_n_trim", lambda x: F.rfft(x, n=4, norm="forward"), lambda x: np.fft.rfft(x, n=4, norm="forward"), (7,)),
    ("fft2", lambda x: F.fft2(x), np.fft.fft2, (3, 4)),
    ("fft2_s", lambda x: F.fft2(x, s=(4, 3), norm="ortho"), lambda x: np.fft.fft2(x, s=(4, 3), norm="ortho"),
     (2, 3, 4)),
    ("rfft2", lambda x: F.rfft2(x), np.fft.rfft2, (3, 4)),
    ("rfftn_dims", lambda x: F.rfftn(x, dim=(0, 2)), lambda x: np.fft.rfftn(x, axes=(0, 2)), (3, 2, 5)),
    ("fftn", lambda x: F.fftn(x), np.fft.fftn, (2, 3, 2)),
    ("ihfft", lambda x: F.ihfft(x), np.fft.ihfft, (6,)),
    ("ihfft_odd_ortho", lambda x: F.ihfft(x, norm="ortho"), lambda x: np.fft.ihfft(x, norm="ortho"), (5,)),
]

C2X = [  # (name, nerve fn of a complex tensor, numpy fn, shape, real output)
    ("fft_c", lambda z: F.fft(z), np.fft.fft, (5,), False),
    ("ifft_c", lambda z: F.ifft(z, norm="forward"), lambda z: np.fft.ifft(z, norm="forward"), (2, 4), False),
    ("ifft2_c_s", lambda z: F.ifft2(z, s=(2, 5)), lambda z: np.fft.ifft2(z, s=(2, 5)), (3, 4), False),
    ("ifftn_c", lambda z: F.ifftn(z, norm="ortho"), lambda z: np.fft.ifftn(z, norm="ortho"), (2, 3, 2), False),
    ("irfft_even", lambda z: F.irfft(z), np.fft.irfft, (4,), True),  # n = 6
    ("irfft_odd", lambda z: F.irfft(z, n=7), lambda z: np.fft.irfft(z, n=7), (4,), True),
    ("irfft_pad_ortho", lambda z: F.irfft(z, n=10, norm="ortho"), lambda z: np.fft.irfft(z, n=10, norm="ortho"),
     (2, 3), True),
    ("irfft_trim_forward", lambda z: F.irfft(z, n=4, norm="forward"),
     lambda z: np.fft.irfft(z, n=4, norm="forward"), (5,), True),
    ("irfft2", lambda z: F.irfft2(z), np.fft.irfft2, (3, 3), True),
    ("irfftn_s", lambda z: F.irfftn(z, s=(3, 5)), lambda z: np.fft.irfftn(z, s=(3, 5), axes=(0, 1)), (3, 3), True),
    ("hfft", lambda z: F.hfft(z), np.fft.hfft, (4,), True),
    ("hfft_n_odd_ortho", lambda z: F.hfft(z, n=5, norm="ortho"), lambda z: np.fft.hfft(z, n=5, norm="ortho"),
     (3,), True),
    ("conj", nerve.conj, np.conj, (3,), False),
    ("real", nerve.real, np.real, (3,), True),
    ("imag", nerve.imag, np.imag, (3,), True),
    ("abs", lambda z: z.abs(), np.abs, (4,), True),
    ("angle", nerve.angle, np.angle, (4,), True),
]


def _cases():
    for name, fn, ref, shape in R2C:
        yield Case(name, lambda x, fn=fn: vr(fn(x)), lambda x, ref=ref: nvr(ref(x)), [shape], rtol=1e-10,
                   atol=1e-12, second=name in ("fft", "rfft_even", "fft2_s"))
    for name, fn, ref, shape, real_out in C2X:
        out = (lambda z, fn=fn: fn(z)) if real_out else (lambda z, fn=fn: vr(fn(z)))
        nref = (lambda z, ref=ref: ref(z)) if real_out else (lambda z, ref=ref: nvr(ref(z)))
        yield Case(name, lambda re, im, out=out: out(C(re, im)), lambda re, im, nref=nref: nref(re + 1j * im),
                   [shape, shape], rtol=1e-10, atol=1e-12,
                   second=name in ("fft_c", "irfft_even", "irfft_odd", "hfft", "conj", "imag", "angle"))
    yield Case("roundtrip_rfft_irfft", lambda x: F.irfft(F.rfft(x), n=5), lambda x: x, [(5,)], second=True)
    yield Case("fftshift", lambda x: F.fftshift(x), np.fft.fftshift, [(2, 5)])
    yield Case("ifftshift_dim", lambda x: F.ifftshift(x, dim=1), lambda x: np.fft.ifftshift(x, axes=1), [(2, 5)])
    yield Case("polar", lambda r, t: vr(nerve.polar(r, t)), lambda r, t: nvr(r * np.exp(1j * t)), [(3,), (3,)],
               low=0.5)
    yield Case("view_as_complex", lambda x: nerve.view_as_complex(x).abs(),
               lambda x: np.abs(x[..., 0] + 1j * x[..., 1]), [(3, 2)])


CASES = list(_cases())
test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree, \
    test_rule_reads_only_its_namespace = table_tests(CASES)
