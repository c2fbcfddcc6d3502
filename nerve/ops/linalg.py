"""Linear algebra: matmul (batched, broadcasting, NumPy's 1-D rules)."""
from __future__ import annotations

from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops.reduce import sum_to
from nerve.tensor import Tensor


class MatMul(Function):
    def forward(self, a, b):
        return xp.matmul(a, b)

    def backward(self, g):  # C = AB: dA = dC B^T, dB = A^T dC (1-D operands promoted, then restored)
        a, b = self.inputs
        na, nb = self.needs_input_grad
        A = a.reshape(1, -1) if a.ndim == 1 else a
        B = b.reshape(-1, 1) if b.ndim == 1 else b
        if a.ndim == 1 and b.ndim == 1:
            G = g.reshape(1, 1)
        elif a.ndim == 1:
            G = g.unsqueeze(-2)
        elif b.ndim == 1:
            G = g.unsqueeze(-1)
        else:
            G = g
        ga = gb = None
        if na:
            ga = sum_to(G @ B.mT, A.shape).reshape(a.shape)
        if nb:
            gb = sum_to(A.mT @ G, B.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules: batched, broadcast batch dimensions, 1-D operands."""
    if not isinstance(a, Tensor):
        a = Tensor(a)
    if not isinstance(b, Tensor):
        b = Tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    try:
        return MatMul.apply(a, b)
    except ValueError:
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        why = (f"{k_a} != {k_b}" if k_a != k_b else "batch dimensions do not broadcast")
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align ({why})") from None


__all__ = ["matmul"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["matmul"]
