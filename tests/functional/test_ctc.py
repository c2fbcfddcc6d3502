"""F.ctc_loss / nn.CTCLoss against a brute-force sum over all alignments, finite differences and second
derivatives (float64)."""
import itertools

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn

RNG = np.random.default_rng(1)


def collapse(path, blank):
    out, prev = [], None
    for label in path:
        if label != prev and label != blank:
            out.append(label)
        prev = label
    return out


def brute_nll(lp, target, blank=0):
    """-log of the sum over every length-T label path that collapses to target (lp: (T, C))."""
    total = 0.0
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        if collapse(path, blank) == list(target):
            total += np.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return -np.log(total) if total > 0 else np.inf


def logp(shape):
    z = RNG.standard_normal(shape)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


CASES = [([1, 2], 4), ([1, 1], 5), ([2], 3), ([], 3), ([2, 1, 2], 5)]


def test_matches_brute_force_over_alignments():
    lp = logp((5, len(CASES), 3))
    targets = np.zeros((len(CASES), 3), dtype=np.int64)
    for i, (tg, _) in enumerate(CASES):
        targets[i, :len(tg)] = tg
    lengths = [n for _, n in CASES]
    tl = [len(tg) for tg, _ in CASES]
    loss = F.ctc_loss(nerve.tensor(lp), nerve.tensor(targets), lengths, tl, reduction="none").numpy()
    ref = [brute_nll(lp[:n, i], tg) for i, (tg, n) in enumerate(CASES)]
    np.testing.assert_allclose(loss, ref, rtol=1e-10)
    mean = F.ctc_loss(nerve.tensor(lp), nerve.tensor(targets), lengths, tl).item()
    assert np.isclose(mean, np.mean([r / max(k, 1) for r, k in zip(ref, tl)]))
    concat = np.concatenate([tg for tg, _ in CASES]).astype(np.int64)
    total = nn.CTCLoss(reduction="sum")(nerve.tensor(lp), nerve.tensor(concat), nerve.tensor(lengths), tl).item()
    assert np.isclose(total, sum(ref))


def test_gradient_matches_brute_force_and_finite_differences():
    lp = logp((4, 1, 3))
    x = nerve.tensor(lp, requires_grad=True)
    F.ctc_loss(x, nerve.tensor([[1, 2]]), [4], [2], reduction="sum").backward()
    eps, fd = 1e-6, np.zeros_like(lp)
    for idx in np.ndindex(lp.shape):
        up, down = lp.copy(), lp.copy()
        up[idx] += eps
        down[idx] -= eps
        fd[idx] = (brute_nll(up[:, 0], [1, 2]) - brute_nll(down[:, 0], [1, 2])) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), fd, atol=1e-7)
    raw = nerve.tensor(RNG.standard_normal((5, 3, 4)), requires_grad=True)  # unnormalised: the true gradient

    def fn(a):
        return F.ctc_loss(a, nerve.tensor([[1, 3], [2, 2], [3, 0]]), [5, 4, 3], [2, 2, 1], reduction="none")
    assert nerve.gradcheck(fn, [raw])
    assert nerve.gradgradcheck(fn, [raw])


def test_zero_infinity_unbatched_and_blank():
    lp = logp((2, 1, 3))
    x = nerve.tensor(lp, requires_grad=True)
    inf = F.ctc_loss(x, nerve.tensor([[1, 1]]), [2], [2], reduction="none")  # needs 3 frames: impossible
    assert np.isinf(inf.item())
    zero = F.ctc_loss(x, nerve.tensor([[1, 1]]), [2], [2], reduction="sum", zero_infinity=True)
    zero.backward()
    assert zero.item() == 0 and np.all(x.grad.numpy() == 0)
    one = logp((4, 3))
    un = F.ctc_loss(nerve.tensor(one), nerve.tensor([0, 1]), 4, 2, blank=2, reduction="none")
    assert un.shape == () and np.isclose(un.item(), brute_nll(one, [0, 1], blank=2))


def test_errors():
    lp = nerve.tensor(logp((3, 1, 3)))
    with pytest.raises(ValueError, match=r"ctc_loss: blank must be in \[0, 3\)"):
        F.ctc_loss(lp, nerve.tensor([[1]]), [3], [1], blank=3)
    with pytest.raises(ValueError, match=r"input_lengths must be in \[1, 3\]"):
        F.ctc_loss(lp, nerve.tensor([[1]]), [4], [1])
    with pytest.raises(ValueError, match="must not contain blank"):
        F.ctc_loss(lp, nerve.tensor([[0]]), [3], [1])
    with pytest.raises(IndexError, match=r"target labels must be in \[0, 3\)"):
        F.ctc_loss(lp, nerve.tensor([[5]]), [3], [1])
    with pytest.raises(ValueError, match="reduction"):
        F.ctc_loss(lp, nerve.tensor([[1]]), [3], [1], reduction="avg")
    with pytest.raises(TypeError, match="targets must hold integers"):
        F.ctc_loss(lp, nerve.tensor([[1.0]]), [3], [1])


def test_learns_a_sequence():
    """A per-frame linear classifier trained with CTC emits the target after greedy decoding."""
    gen = np.random.default_rng(0)
    feats = nerve.tensor(gen.standard_normal((6, 1, 5)), dtype=nerve.float32)
    layer = nn.Linear(5, 4)
    opt = nerve.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(100):
        loss = nn.CTCLoss()(layer(feats).log_softmax(-1), nerve.tensor([[1, 3, 3]]), [6], [3])
        opt.zero_grad()
        loss.backward()
        opt.step()
    best = layer(feats).argmax(-1).numpy()[:, 0]
    assert collapse(best.tolist(), 0) == [1, 3, 3]
