"""The op-table machinery: forward against a NumPy reference, backward through gradcheck in float64."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

import nerve


@dataclass
class Case:
    """One op on one set of input shapes.

    fn: nerve function of Tensors; ref: the same on NumPy arrays; shapes: one shape per input;
    low/high: the range inputs are drawn from (keep away from kinks and poles); grad: which inputs
    are differentiated (default all floating ones); second: also run gradgradcheck.
    """

    name: str
    fn: Callable
    ref: Callable
    shapes: Sequence[tuple]
    low: float = -2.0
    high: float = 2.0
    second: bool = False
    grad: Sequence[int] | None = None
    make: Callable | None = None  # custom input maker: rng -> list of arrays
    rtol: float = 1e-7
    atol: float = 1e-9
    check_grad: bool = True
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name}{list(self.shapes)}"


def make_inputs(case: Case, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    if case.make is not None:
        return case.make(rng)
    return [rng.uniform(case.low, case.high, size=s) for s in case.shapes]


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_forward(case: Case) -> None:
    arrays = make_inputs(case)
    got = _as_list(case.fn(*[nerve.tensor(a) for a in arrays]))
    want = _as_list(case.ref(*[a.copy() for a in arrays]))
    assert len(got) == len(want), f"{case}: {len(got)} outputs, reference has {len(want)}"
    for g, w in zip(got, want):
        g = g.numpy() if isinstance(g, nerve.Tensor) else np.asarray(g)
        w = np.asarray(w)
        assert g.shape == w.shape, f"{case}: shape {g.shape} != reference {w.shape}"
        np.testing.assert_allclose(g, w, rtol=case.rtol, atol=case.atol, err_msg=str(case))


def _diff_tensors(case: Case):
    arrays = make_inputs(case)
    which = case.grad if case.grad is not None else [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    return [nerve.tensor(a, requires_grad=(i in which and a.size > 0 or i in which))
            for i, a in enumerate(arrays)]


def check_backward(case: Case) -> None:
    tensors = _diff_tensors(case)
    assert nerve.gradcheck(case.fn, tensors)


def check_second(case: Case) -> None:
    tensors = _diff_tensors(case)
    assert nerve.gradgradcheck(case.fn, tensors)
