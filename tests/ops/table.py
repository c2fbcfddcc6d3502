"""The op-table machinery: forward against a NumPy reference, backward through gradcheck in float64."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pytest

import nerve
from nerve.autograd import engine
from nerve.autograd.rule_math import ArrayMath


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


def _graph_outputs(case: Case, tensors):
    out = case.fn(*tensors)
    return [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, nerve.Tensor) and o.requires_grad]


def _cotangents(outs) -> list:
    rng = np.random.default_rng(1)
    return [nerve.tensor(rng.standard_normal(o.shape)) for o in outs]


def check_paths(case: Case) -> None:
    """A rule gives the same gradient on the array namespace (first order) and on the Tensor one."""
    tensors = [nerve.tensor(a, requires_grad=a.dtype.kind == "f") for a in make_inputs(case)]
    diff = [t for t in tensors if t.requires_grad]
    results = []
    for create_graph in (False, True):
        outs = _graph_outputs(case, tensors)
        results.append(nerve.grad(outs, diff, _cotangents(outs), create_graph=create_graph, allow_unused=True))
    for fast, graph in zip(*results):
        assert (fast is None) == (graph is None), str(case)
        if fast is not None:
            np.testing.assert_allclose(fast.numpy(), graph.numpy(), rtol=1e-12, atol=1e-12, err_msg=str(case))


class _PoisonedMath(ArrayMath):
    """The array namespace, but every value it hands out comes from a stash: the Tensors and outputs in
    the graph itself hold NaN, so a rule that reads them without the namespace returns NaN."""

    def __init__(self, stash: dict) -> None:
        self.stash = stash

    def inputs(self, node) -> list:
        return [self.stash.get(id(t), t.data) if isinstance(t, nerve.Tensor) else t for t in node.inputs]

    def output(self, node):
        return self.stash[("out", id(node))]


def _graph_nodes(outs) -> list:
    nodes, stack = [], [o.grad_fn for o in outs if o.grad_fn is not None]
    seen = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(t.grad_fn for t in node.inputs if isinstance(t, nerve.Tensor) and t.grad_fn is not None)
    return nodes


def check_poisoned(case: Case, monkeypatch) -> None:
    """Every rule reads saved values only through its namespace (so one rule serves both paths)."""
    tensors = [nerve.tensor(a, requires_grad=a.dtype.kind == "f") for a in make_inputs(case)]
    diff = [t for t in tensors if t.requires_grad]
    outs = _graph_outputs(case, tensors)
    vs = _cotangents(outs)
    want = nerve.grad(outs, diff, vs, retain_graph=True, allow_unused=True)
    stash: dict = {}
    for node in _graph_nodes(outs):
        for t in node.inputs:
            if isinstance(t, nerve.Tensor) and t.dtype.kind == "f" and id(t) not in stash:
                stash[id(t)] = t.data
                t.data = np.full_like(t.data, np.nan)
        if hasattr(node, "_out"):
            stash[("out", id(node))] = node._out
            node._out = np.full_like(node._out, np.nan)
    monkeypatch.setattr(engine, "ARRAY", _PoisonedMath(stash))
    got = nerve.grad(outs, diff, vs, allow_unused=True)
    for g, w in zip(got, want):
        if w is not None:
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12, atol=1e-12, err_msg=str(case))


def _nonempty(case: Case) -> bool:
    return all(d != 0 for s in case.shapes for d in s)


def table_tests(cases: list) -> tuple:
    """The five tests of an op table: forward vs reference, gradcheck, gradgradcheck (cases marked
    ``second``, non-empty), the array and Tensor paths of each rule agree, and no rule bypasses its
    namespace; a test module binds them to module-level names."""

    @pytest.mark.parametrize("case", cases, ids=str)
    def test_forward(case):
        check_forward(case)

    @pytest.mark.parametrize("case", [c for c in cases if c.check_grad], ids=str)
    def test_gradcheck(case):
        check_backward(case)

    @pytest.mark.parametrize("case", [c for c in cases if c.second and _nonempty(c)], ids=str)
    def test_gradgradcheck(case):
        check_second(case)

    @pytest.mark.parametrize("case", [c for c in cases if c.check_grad], ids=str)
    def test_array_and_tensor_paths_agree(case):
        check_paths(case)

    @pytest.mark.parametrize("case", [c for c in cases if c.check_grad], ids=str)
    def test_rule_reads_only_its_namespace(case, monkeypatch):
        check_poisoned(case, monkeypatch)

    return (test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
            test_rule_reads_only_its_namespace)
