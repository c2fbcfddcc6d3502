"""Linear algebra: matmul (batched, broadcasting, NumPy's 1-D rules), bmm, einsum, outer and dot, and the
fused layers ``linear`` (x W^T + b) and ``linear_gelu`` (gelu(x W^T + b)).

This module registers ``m.matmul`` for other rules (attention, recurrent layers).
"""
from __future__ import annotations

import string

from nerve import backend
from nerve.autograd.function import Function, ShapeError
from nerve.autograd.rule_math import define
from nerve.backend import xp
from nerve.ops import streams
from nerve.ops.activation import gelu, gelu_slope
from nerve.ops.elementwise import _conj
from nerve.ops.reduce import norm
from nerve.tensor import Tensor


class MatMul(Function):
    def forward(self, a, b):  # NOTE: a small product skips streams.matmul's call: 64x64 chains were 4% slower
        if not streams.THREADS or b.ndim == 2 and 2.0 * a.size * b.shape[1] < streams.GEMM_SPLIT_FLOPS:
            return xp.matmul(a, b)
        return streams.matmul(a, b)

    def backward(self, g, m):  # C = AB: dA = dC B^T, dB = A^T dC (1-D operands promoted, then restored)
        a, b = m.inputs(self)
        if g.dtype.kind == "c":  # complex operands: dA = dC B^H, dB = A^H dC (PyTorch's convention)
            a, b = _conj(a), _conj(b)
        na, nb = self.needs_input_grad
        if a.ndim == 2 and b.ndim == 2:
            return (m.matmul(g, b.T) if na else None), (m.matmul(a.T, g) if nb else None)
        A = a.reshape((1, a.shape[0])) if a.ndim == 1 else a
        B = b.reshape((b.shape[0], 1)) if b.ndim == 1 else b
        if a.ndim == 1 and b.ndim == 1:
            G = g.reshape((1, 1))
        elif a.ndim == 1:
            G = g.reshape(g.shape[:-1] + (1, g.shape[-1]))
        elif b.ndim == 1:
            G = g.reshape(g.shape + (1,))
        else:
            G = g
        ga = m.sum_to(m.matmul(G, B.mT), A.shape).reshape(a.shape) if na else None
        gb = m.sum_to(m.matmul(A.mT, G), B.shape).reshape(b.shape) if nb else None
        return ga, gb


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules: batched, broadcast batch dimensions, 1-D operands."""
    a, b = _tensor(a), _tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least 1 dimension, got shapes {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    try:
        return MatMul.apply(a, b)
    except ValueError:
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        why = (f"{k_a} != {k_b}" if k_a != k_b else "batch dimensions do not broadcast")
        raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align ({why})") from None


def bmm(input, mat2) -> Tensor:
    """Batched matrix product of (b, n, m) and (b, m, p) tensors, without broadcasting (PyTorch's bmm)."""
    a, b = _tensor(input), _tensor(mat2)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expected 3-D tensors with equal batch, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[2] != b.shape[1]:
        raise ShapeError(f"bmm: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align "
                         f"({a.shape[2]} != {b.shape[1]})")
    return MatMul.apply(a, b)


# --- einsum -----------------------------------------------------------------------------------------
class Einsum(Function):
    """einsum over operands whose subscripts have no repeated letter (diagonals are taken before)."""

    def forward(self, *arrays, subs, out):
        self.subs, self.out = subs, out
        return xp.einsum(",".join(subs) + "->" + out, *arrays, optimize=len(arrays) > 1)

    def backward(self, g, m):  # d operand k = g contracted with the other operands onto k's subscripts
        # NOTE: letters only k has were summed out in forward, so their gradient is broadcast back (expand);
        # size-1 letters of k that broadcast against a larger size are summed back (sum_to).
        values = m.inputs(self)
        grads = []
        for k, (sub, x) in enumerate(zip(self.subs, values)):
            if not self.needs_input_grad[k]:
                grads.append(None)
                continue
            others = [(s, t) for j, (s, t) in enumerate(zip(self.subs, values)) if j != k]
            known = set(self.out).union(*[s for s, _ in others])
            target = "".join(c for c in sub if c in known)
            gk = m.apply(Einsum, g, *[t for _, t in others], subs=[self.out] + [s for s, _ in others], out=target)
            if len(target) < len(sub):
                gk = gk.reshape(tuple(gk.shape[target.index(c)] if c in known else 1 for c in sub))
            gk = m.sum_to(gk, tuple(1 if n == 1 else size for n, size in zip(x.shape, gk.shape)))
            grads.append(gk if gk.shape == x.shape else m.expand(gk, x.shape))
        return tuple(grads)


def _einsum_error(equation: str, operands, why: str) -> ShapeError:
    shapes = ", ".join(str(tuple(t.shape)) for t in operands)
    return ShapeError(f"einsum {equation!r} on shapes {shapes}: {why}")


def _parse_einsum(equation: str, operands) -> tuple[list[str], str, str]:
    """Explicit subscripts (one letter per axis) for each operand and the output, and the letters of '...'."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise _einsum_error(equation, operands, f"{len(terms)} subscript terms for {len(operands)} operands")
    for term in terms + ([out] if arrow else []):
        rest = term.replace("...", "", 1)
        if any(c not in string.ascii_letters for c in rest):
            raise _einsum_error(equation, operands, f"invalid subscripts {term!r} (letters, at most one "
                                "'...' per term, at most one '->')")
    used = set(c for c in eq if c in string.ascii_letters)
    free = [c for c in string.ascii_letters if c not in used]
    n_ell = 0
    for term, t in zip(terms, operands):
        explicit = len(term.replace("...", ""))
        if ("..." in term and t.ndim < explicit) or ("..." not in term and t.ndim != explicit):
            raise _einsum_error(equation, operands, f"subscripts {term!r} do not match an operand with "
                                f"{t.ndim} dimensions")
        if "..." in term:
            n_ell = max(n_ell, t.ndim - explicit)
    if n_ell > len(free):
        raise _einsum_error(equation, operands, "too many dimensions for the letters left over")
    ell = "".join(free[:n_ell])
    subs = [term.replace("...", ell[n_ell - (t.ndim - len(term) + 3):]) for term, t in zip(terms, operands)]
    if not arrow:
        counts = "".join(subs)
        out = ell + "".join(sorted(c for c in set(counts) if c not in ell and counts.count(c) == 1))
    elif "..." in out:
        out = out.replace("...", ell)
    elif n_ell:
        raise _einsum_error(equation, operands, "the output must contain '...' when operands have "
                            "'...' dimensions")
    if len(set(out)) != len(out):
        raise _einsum_error(equation, operands, f"output subscripts {out!r} repeat a letter")
    missing = set(out) - set("".join(subs))
    if missing:
        raise _einsum_error(equation, operands, f"output letters {''.join(sorted(missing))!r} appear in "
                            "no operand")
    return subs, out, ell


def _letter_sizes(equation: str, subs, operands, ell: str) -> None:
    """Check that each letter has one size (1 broadcasts); a letter repeated in one term agrees exactly."""
    sizes: dict = {}
    for k, (sub, t) in enumerate(zip(subs, operands)):
        seen: dict = {}
        for c, n in zip(sub, t.shape):
            if c in seen and seen[c] != n:
                raise _einsum_error(equation, operands, f"letter {c!r} repeats in operand {k} with sizes "
                                    f"{seen[c]} and {n}")
            seen[c] = n
            if n != 1:
                if sizes.get(c, (n,))[0] != n:
                    what = "a '...' dimension" if c in ell else f"letter {c!r}"
                    raise _einsum_error(equation, operands, f"{what} has size {sizes[c][0]} in "
                                        f"operand {sizes[c][1]} but {n} in operand {k}")
                sizes[c] = (n, k)


def _diagonal(t: Tensor, sub: str) -> tuple[Tensor, str]:
    """Take the diagonal over letters repeated in ``sub`` ('ii' -> 'i'), by indexing (which scatters back)."""
    unique = "".join(dict.fromkeys(sub))
    if unique == sub:
        return t, sub
    size = {c: n for c, n in zip(sub, t.shape)}
    key = []
    for c in sub:
        shape = [1] * len(unique)
        shape[unique.index(c)] = size[c]
        key.append(backend.to_device(xp.arange(size[c]).reshape(shape), t.device))
    return t[tuple(key)], unique


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation (NumPy/PyTorch notation, with '...' and implicit output), differentiable.

    Repeated letters within one operand take its diagonal ('ii->i', 'ii->' for the trace).
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = [_tensor(t) for t in operands]
    subs, out, ell = _parse_einsum(equation, operands)
    _letter_sizes(equation, subs, operands, ell)
    pairs = [_diagonal(t, s) for t, s in zip(operands, subs)]
    return Einsum.apply(*[t for t, _ in pairs], subs=[s for _, s in pairs], out=out)


def mm(input, mat2) -> Tensor:
    """Product of two matrices (2-D only, no broadcasting: PyTorch's mm)."""
    a, b = _tensor(input), _tensor(mat2)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ShapeError(f"mm: expected matrices (n, m) and (m, p), got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return MatMul.apply(a, b)


def mv(input, vec) -> Tensor:
    """Product of a matrix (n, m) and a vector (m,) (PyTorch's mv)."""
    a, b = _tensor(input), _tensor(vec)
    if a.ndim != 2 or b.ndim != 1 or a.shape[1] != b.shape[0]:
        raise ShapeError(f"mv: expected a matrix (n, m) and a vector (m,), got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return MatMul.apply(a, b)


def bilinear(input1, input2, weight, bias=None) -> Tensor:
    """y_o = input1 . weight[o] . input2 + bias_o over the last dims; weight is (out, in1, in2)."""
    a, b, w = _tensor(input1), _tensor(input2), _tensor(weight)
    if w.ndim != 3 or a.shape[-1] != w.shape[1] or b.shape[-1] != w.shape[2] or a.shape[:-1] != b.shape[:-1]:
        raise ShapeError(f"bilinear: expected input1 (..., {w.shape[1] if w.ndim == 3 else 'in1'}), input2 "
                         f"(..., {w.shape[2] if w.ndim == 3 else 'in2'}) with the same leading dims and weight "
                         f"(out, in1, in2), got {tuple(a.shape)}, {tuple(b.shape)} and {tuple(w.shape)}")
    out = einsum("...i,oij,...j->...o", a, w, b)
    return out if bias is None else out + bias


def _scaled(product: Tensor, input, beta, alpha) -> Tensor:
    """beta * input + alpha * product; input is left out when beta is 0 (its NaN do not propagate, as PyTorch)."""
    out = product if alpha == 1 else product * alpha
    if beta == 0:
        return out
    return out + (input if beta == 1 else input * beta)


def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2), for matrices."""
    return _scaled(mm(mat1, mat2), input, beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat @ vec)."""
    return _scaled(mv(mat, vec), input, beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * bmm(batch1, batch2)."""
    return _scaled(bmm(batch1, batch2), input, beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * the sum over the batch of batch1[i] @ batch2[i]."""
    return _scaled(bmm(batch1, batch2).sum(0), input, beta, alpha)


def trace(input) -> Tensor:
    """Sum of the main diagonal of a matrix (square or not)."""
    t = _tensor(input)
    if t.ndim != 2:
        raise ShapeError(f"trace: expected a matrix, got shape {tuple(t.shape)}")
    return t.diagonal().sum()


def cross(input, other, dim: int | None = None) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (the first dim of size 3 when None); input and other broadcast."""
    a, b = _tensor(input), _tensor(other)
    try:
        shape = xp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"cross: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    if dim is None:
        dim = next((k for k, n in enumerate(shape) if n == 3), None)
    if dim is None or not -len(shape) <= dim < len(shape) or shape[dim] != 3:
        raise ShapeError(f"cross: dim {dim} must have size 3 (shapes {tuple(a.shape)} and {tuple(b.shape)})")
    a, b = a.expand(*shape), b.expand(*shape)
    first = backend.to_device(xp.asarray([1, 2, 0]), a.device)
    second = backend.to_device(xp.asarray([2, 0, 1]), a.device)
    return (a.index_select(dim, first) * b.index_select(dim, second)
            - a.index_select(dim, second) * b.index_select(dim, first))


def kron(input, other) -> Tensor:
    """Kronecker product: block (i, j, ...) is input[i, j, ...] * other."""
    a, b = _tensor(input), _tensor(other)
    n = max(a.ndim, b.ndim)
    a = a.reshape((1,) * (n - a.ndim) + tuple(a.shape))
    b = b.reshape((1,) * (n - b.ndim) + tuple(b.shape))
    interleaved_a = tuple(x for s in a.shape for x in (s, 1))
    interleaved_b = tuple(x for s in b.shape for x in (1, s))
    out = a.reshape(interleaved_a) * b.reshape(interleaved_b)
    return out.reshape(tuple(p * q for p, q in zip(a.shape, b.shape)))


def cdist(x1, x2, p: float = 2.0) -> Tensor:
    """p-norm distances between the rows of x1 (..., P, M) and of x2 (..., R, M): (..., P, R).

    Computed from the differences (no |x|^2 + |y|^2 - 2xy cancellation); the gradient at a zero distance is 0.
    """
    a, b = _tensor(x1), _tensor(x2)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"cdist: expected x1 (..., P, M) and x2 (..., R, M) with the same M, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    diff = a.unsqueeze(-2) - b.unsqueeze(-3)
    if p == 0:
        return (diff != 0).sum(-1).astype(diff.dtype)
    return norm(diff, p, -1)


def outer(a, b) -> Tensor:
    """Outer product of two 1-D tensors: out[i, j] = a[i] * b[j]."""
    a, b = _tensor(a), _tensor(b)
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"outer: expected two 1-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return a.reshape(-1, 1) * b


def dot(a, b) -> Tensor:
    """Inner product of two 1-D tensors of the same length."""
    a, b = _tensor(a), _tensor(b)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ShapeError(f"dot: expected two 1-D tensors of the same length, got shapes {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    return MatMul.apply(a, b)


# --- the fused layers x W^T + b and gelu(x W^T + b) ------------------------------------------------------
def _affine(x: Tensor, weight: Tensor, bias) -> Tensor:
    """x W^T + b from primitives (the fused kernels' reference)."""
    y = matmul(x, weight.T)
    return y if bias is None else y + bias


class Linear(Function):
    """x W^T + b in one node (PyTorch's addmm layout: W is (out_features, in_features))."""

    def forward(self, x, weight, bias):
        # NOTE: (..., in) is multiplied as one (rows, in) GEMM: NumPy runs a 3-D @ 2-D product as one
        # small GEMM per leading index, 2-4x slower.
        product = streams.matmul if streams.THREADS else xp.matmul
        out = product(x.reshape(-1, x.shape[-1]), weight.T).reshape(x.shape[:-1] + (weight.shape[0],))
        if bias is not None:
            out += bias
        return out

    def backward(self, g, m):  # y = x W^T + b: dx = g W, dW = g^T x, db = sum of g over the batch
        x, w, _ = m.inputs(self)
        nx, nw, nb = self.needs_input_grad
        g2 = g.reshape(-1, w.shape[0])
        return (m.matmul(g2, w).reshape(x.shape) if nx else None,
                m.matmul(g2.T, x.reshape(-1, w.shape[1])) if nw else None,
                g2.sum(0) if nb else None)

    def reference(self, x, weight, bias):
        return _affine(x, weight, bias)


class LinearGELU(Function):
    """gelu(x W^T + b) (exact GELU, the normal CDF form) in one node: the first half of a transformer's MLP."""

    def forward(self, x, weight, bias):
        # NOTE: one GEMM over all rows, as in Linear
        h = streams.matmul(x.reshape(-1, x.shape[-1]), weight.T)
        if bias is not None:
            h += bias
        out, self.slope = gelu_slope(h)
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, g, m):  # dh = g gelu'(h); dx = dh W, dW = dh^T x, db = sum of dh
        x, w, _ = m.inputs(self)
        nx, nw, nb = self.needs_input_grad
        dh = g.reshape(self.slope.shape) * self.slope
        return (m.matmul(dh, w).reshape(x.shape) if nx else None,
                m.matmul(dh.T, x.reshape(-1, w.shape[1])) if nw else None, dh.sum(0) if nb else None)

    def reference(self, x, weight, bias):
        return gelu(_affine(x, weight, bias))


def check_linear_args(op: str, input: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    """Raise a clear error when input (..., in), weight (out, in) and bias (out,) do not fit together."""
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(f"{op}: input {tuple(input.shape)} does not match weight {tuple(weight.shape)}: "
                         f"expected input (..., {weight.shape[-1]})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ShapeError(f"{op}: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` as one graph node (weight has shape (out_features, in_features))."""
    check_linear_args("linear", input, weight, bias)
    return Linear.apply(input, weight, bias)


def linear_gelu(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``gelu(input @ weight.T + bias)`` (exact GELU) as one graph node; weight is (out, in)."""
    check_linear_args("linear_gelu", input, weight, bias)
    return LinearGELU.apply(input, weight, bias)


define("matmul", streams.matmul, matmul)

__all__ = ["addbmm", "addmm", "addmv", "baddbmm", "bilinear", "bmm", "cdist", "check_linear_args", "cross", "dot",
           "einsum", "kron", "linear", "linear_gelu", "matmul", "mm", "mv", "outer", "trace"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["addbmm", "addmm", "addmv", "baddbmm", "bmm", "cross", "dot", "kron", "matmul", "mm", "mv", "outer",
           "trace"]
