"""matmul, bmm, einsum, outer, dot and the fused linear and linear_gelu: forward against NumPy, gradcheck and
gradgradcheck in float64 (the fused kernels' second order through their references), both rule paths."""
import math

import numpy as np
import pytest
from scipy.special import erf

import nerve
from tests.ops.table import Case, table_tests

MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 3)), ((2, 3, 4), (4,)), ((2, 3, 4), (4, 2)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((0, 3), (3, 2)), ((2, 0), (0, 3))]

# (equation, operand shapes, also gradgradcheck)
EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 2)], True),
    ("ij,jk", [(3, 4), (4, 2)], False),  # implicit output
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)], True),
    ("i,i->", [(5,), (5,)], True),
    ("i,j->ij", [(3,), (4,)], False),
    ("ij->ji", [(3, 4)], False),
    ("ij->", [(3, 4)], True),
    ("ij->j", [(3, 4)], False),
    ("ii->", [(4, 4)], True),  # trace
    ("ii->i", [(4, 4)], True),  # diagonal
    ("iij->j", [(3, 3, 2)], False),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)], True),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)], False),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)], True),  # ellipsis with broadcast batch dims
    ("...i->...", [(2, 3, 4)], False),
    ("i...", [(3, 2, 4)], False),  # implicit output puts the ellipsis first
    ("ij,ij->i", [(3, 1), (3, 4)], True),  # a size-1 letter broadcasts
    (",ij->ij", [(), (3, 4)], True),  # 0-d operand
    ("ij,jk->ik", [(0, 3), (3, 2)], False),
    ("ij,jk->ik", [(2, 0), (0, 3)], False),
    ("ij,j->i", [(3, 4), (1,)], False),
]

# (input shape, weight shape, with bias)
LINEAR = [((3, 4), (5, 4), True), ((2, 3, 4), (5, 4), True), ((2, 3, 4), (5, 4), False), ((4,), (3, 4), True),
          ((2, 1, 3, 4), (2, 4), True), ((0, 4), (3, 4), True)]


def np_gelu(h):
    return h * 0.5 * (1 + erf(h / math.sqrt(2)))


def np_gelu_slope(h):
    return 0.5 * (1 + erf(h / math.sqrt(2))) + h * np.exp(-h * h / 2) / math.sqrt(2 * math.pi)


def _linear_cases():
    for sx, sw, bias in LINEAR:
        shapes = [sx, sw] + ([sw[:1]] if bias else [])
        for name, fn, act in (("linear", nerve.linear, lambda h: h), ("linear_gelu", nerve.linear_gelu, np_gelu)):
            ref = (lambda x, w, b, act=act: act(x @ w.T + b)) if bias else (lambda x, w, act=act: act(x @ w.T))
            yield Case(name if bias else f"{name}_nobias", fn, ref, shapes, second=True, rtol=1e-13, atol=1e-13)


def _np_cdist(a, b, p):
    """Distances by a loop over every pair of rows."""
    out = np.zeros(a.shape[:-2] + (a.shape[-2], b.shape[-2]))
    for idx in np.ndindex(*out.shape):
        d = a[idx[:-2] + (idx[-2],)] - b[idx[:-2] + (idx[-1],)]
        out[idx] = (np.count_nonzero(d) if p == 0 else np.abs(d).max() if p == float("inf")
                    else (np.abs(d) ** p).sum() ** (1 / p))
    return out


def _cases():
    yield from _linear_cases()
    for sa, sb in MATMUL_SHAPES:
        yield Case("matmul", lambda a, b: a @ b, np.matmul, [sa, sb], second=0 not in sa + sb)
    for eq, shapes, second in EINSUM:
        yield Case(f"einsum[{eq}]", lambda *ops, eq=eq: nerve.einsum(eq, *ops),
                   lambda *ops, eq=eq: np.einsum(eq, *ops), shapes, second=second)
    yield Case("einsum_list", lambda a, b: nerve.einsum("ij,jk->ik", [a, b]), np.matmul, [(2, 3), (3, 2)])
    yield Case("bmm", lambda a, b: a.bmm(b), np.matmul, [(2, 3, 4), (2, 4, 5)], second=True)
    yield Case("bmm_empty", nerve.bmm, np.matmul, [(0, 3, 4), (0, 4, 2)])
    yield Case("outer", lambda a, b: a.outer(b), np.outer, [(3,), (4,)], second=True)
    yield Case("outer_empty", nerve.outer, np.outer, [(0,), (4,)])
    yield Case("dot", lambda a, b: a.dot(b), np.dot, [(5,), (5,)], second=True)
    yield Case("mm", lambda a, b: a.mm(b), np.matmul, [(2, 3), (3, 4)], second=True)
    yield Case("addmm", lambda c, a, b: nerve.addmm(c, a, b, beta=0.5, alpha=2.0), lambda c, a, b: 0.5 * c + 2 * a @ b,
               [(2, 4), (2, 3), (3, 4)], second=True)
    yield Case("addmm_beta0", lambda c, a, b: c.addmm(a, b, beta=0), lambda c, a, b: a @ b, [(4,), (2, 3), (3, 4)],
               second=True)
    yield Case("addmv", nerve.addmv, lambda c, a, b: c + a @ b, [(2,), (2, 3), (3,)], second=True)
    yield Case("baddbmm", lambda c, a, b: nerve.baddbmm(c, a, b, alpha=-1), lambda c, a, b: c - a @ b,
               [(1, 2, 4), (3, 2, 3), (3, 3, 4)], second=True)
    yield Case("addbmm", nerve.addbmm, lambda c, a, b: c + (a @ b).sum(0), [(2, 4), (3, 2, 3), (3, 3, 4)],
               second=True)
    yield Case("trace", lambda a: a.trace(), np.trace, [(3, 4)], second=True)
    yield Case("cross", lambda a, b: nerve.cross(a, b, dim=1), lambda a, b: np.cross(a, b, axis=1),
               [(2, 3, 4), (1, 3, 4)], second=True)
    yield Case("cross_default_dim", nerve.cross, lambda a, b: np.cross(a, b, axis=0), [(3, 2), (3, 2)], second=True)
    yield Case("kron", nerve.kron, np.kron, [(2, 3), (3, 2)], second=True)
    for p in (1.0, 2.0, 3.0, float("inf")):
        yield Case(f"cdist_p{p}", lambda a, b, p=p: nerve.cdist(a, b, p),
                   lambda a, b, p=p: _np_cdist(a, b, p), [(2, 3, 4), (2, 5, 4)], second=p != 1.0 and p != float("inf"))
    yield Case("cdist_p0", lambda a, b: nerve.cdist(a, b, 0), lambda a, b: _np_cdist(a, b, 0), [(3, 2), (4, 2)],
               check_grad=False, make=lambda rng: [rng.integers(0, 2, (3, 2)) * 1.0, rng.integers(0, 2, (4, 2)) * 1.0])
    yield Case("kron_ndim", lambda a, b: a.kron(b), np.kron, [(2,), (2, 1, 3)], second=True)
    yield Case("mv", nerve.mv, np.matmul, [(2, 3), (3,)], second=True)
    yield Case("einsum_ellipsis_middle", lambda a, b: nerve.einsum("b...i,b...i->b...", a, b),
               lambda a, b: np.einsum("b...i,b...i->b...", a, b), [(2, 3, 1, 4), (2, 1, 5, 4)], second=True)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_einsum_same_tensor_twice_accumulates():
    x = nerve.tensor([1.0, 2.0, 3.0], requires_grad=True)
    nerve.einsum("i,i->", x, x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_einsum_trace_gradient_is_identity():
    x = nerve.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    out = nerve.einsum("ii", x)
    assert out.item() == 12.0
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.eye(3))


def test_einsum_keeps_float32_and_accepts_arrays():
    a = nerve.randn(2, 3)
    out = nerve.einsum("ij,kj->ik", a, np.ones((4, 3), dtype=np.float32))
    assert out.dtype == np.float32 and out.shape == (2, 4)


@pytest.mark.parametrize("eq, shapes, match", [
    ("ij,jk->ik", [(2, 3)], "1 operands"),
    ("ij->i", [(2, 3, 4)], "do not match an operand with 3 dimensions"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "letter 'j' has size 3 in operand 0 but 4 in operand 1"),
    ("ii->i", [(2, 3)], "letter 'i' repeats in operand 0 with sizes 2 and 3"),
    ("ij->ik", [(2, 3)], "output letters 'k' appear in no operand"),
    ("ij->ii", [(2, 2)], "repeat a letter"),
    ("i2->i", [(2, 3)], "invalid subscripts"),
    ("...i->i", [(2, 3)], "must contain '...'"),
    ("...i,...i", [(2, 3), (4, 3)], "a '...' dimension has size 2 in operand 0 but 4 in operand 1"),
])
def test_einsum_errors_name_the_equation_and_shapes(eq, shapes, match):
    with pytest.raises(ValueError, match="einsum") as info:
        nerve.einsum(eq, *[nerve.ones(*s) for s in shapes])
    assert match in str(info.value)
    assert str(tuple(shapes[0])) in str(info.value)


def test_matmul_outer_dot_shape_errors():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align \(3 != 4\)"):
        nerve.ones(2, 3) @ nerve.ones(4, 5)
    with pytest.raises(ValueError, match=r"outer: expected two 1-D tensors, got shapes \(2, 3\) and \(3,\)"):
        nerve.outer(nerve.ones(2, 3), nerve.ones(3))
    with pytest.raises(ValueError, match=r"dot: .* \(3,\) and \(4,\)"):
        nerve.dot(nerve.ones(3), nerve.ones(4))


@pytest.mark.parametrize("sa, sb, match", [
    ((2, 3, 4), (3, 4, 5), r"bmm: expected 3-D tensors with equal batch, got \(2, 3, 4\) and \(3, 4, 5\)"),
    ((3, 4), (4, 5), r"bmm: expected 3-D tensors with equal batch, got \(3, 4\) and \(4, 5\)"),
    ((2, 3, 4), (2, 5, 6), r"bmm: shapes \(2, 3, 4\) and \(2, 5, 6\) do not align \(4 != 5\)"),
])
def test_bmm_shape_errors(sa, sb, match):
    with pytest.raises(ValueError, match=match):
        nerve.bmm(nerve.ones(*sa), nerve.ones(*sb))


def test_bmm_does_not_broadcast_the_batch():
    with pytest.raises(ValueError, match="bmm: expected 3-D tensors with equal batch"):
        nerve.ones(1, 3, 4).bmm(nerve.ones(2, 4, 5))


def test_linear_gelu_float32_matches_float64():
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((3, 4, 5)) * 2, rng.standard_normal((6, 5)), rng.standard_normal(6)
    got32 = nerve.linear_gelu(*(nerve.tensor(a.astype(np.float32)) for a in (x, w, b))).numpy()
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, np_gelu(x @ w.T + b), rtol=1e-5, atol=1e-5)


def test_linear_gelu_float32_slope_on_a_fine_grid():
    """The float32 kernel's own error (erf by Abramowitz & Stegun 7.1.26), in its value and its slope."""
    h = np.linspace(-9, 9, 20001)
    x = nerve.tensor(h.astype(np.float32).reshape(-1, 1), requires_grad=True)
    y = nerve.linear_gelu(x, nerve.ones(1, 1))
    y.sum().backward()
    assert np.abs(y.numpy()[:, 0] - np_gelu(h)).max() < 2e-6
    assert np.abs(x.grad.numpy()[:, 0] - np_gelu_slope(h)).max() < 1e-6


@pytest.mark.parametrize("fn", [nerve.linear, nerve.linear_gelu], ids=["linear", "linear_gelu"])
def test_linear_shape_errors(fn):
    name = fn.__name__
    x = nerve.ones(2, 3, 4)
    with pytest.raises(ValueError, match=rf"{name}: input \(2, 3, 4\) does not match weight \(5, 3\)"):
        fn(x, nerve.ones(5, 3))
    with pytest.raises(ValueError, match=rf"{name}: bias must have shape \(5,\), got \(4,\)"):
        fn(x, nerve.ones(5, 4), nerve.ones(4))


def test_linear_without_grad_records_nothing():
    out = nerve.linear(nerve.ones(2, 3), nerve.ones(4, 3), nerve.ones(4))
    assert out.grad_fn is None and not out.requires_grad
