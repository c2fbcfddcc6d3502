"""Losses of adversarial attacks and training: cross-entropy and the margin (Carlini-Wagner) loss as per-sample
objectives to ascend, and the TRADES KL term."""
from __future__ import annotations

from nerve.backend import xp
from nerve.ops import amax, cross_entropy, gather, log_softmax, masked_fill, minimum, softmax
from nerve.tensor import Tensor

__all__ = ["attack_loss", "margin", "trades_kl", "LOSSES"]

LOSSES = ("ce", "margin")


def margin(logits: Tensor, labels: Tensor) -> Tensor:
    """Per sample: the largest other logit minus the logit of ``labels`` (> 0 exactly when misclassified)."""
    index = labels.data.reshape(-1, 1).astype(xp.int64)
    own = gather(logits, 1, Tensor(index)).reshape(-1)
    mask = xp.arange(logits.shape[1]).reshape(1, -1) == index
    other = amax(masked_fill(logits, Tensor(mask), -xp.inf), dim=1)
    return other - own


def attack_loss(logits: Tensor, labels: Tensor, loss: str = "ce", targeted: bool = False,
                kappa: float = 0.0) -> Tensor:
    """Per-sample objective an attack ascends: the ``loss`` of the true label, or minus it for a target label.

    'ce': cross-entropy; 'margin': Carlini and Wagner's f6, the logit margin capped at ``kappa`` (beyond
    that confidence the sample gives no more gradient).
    """
    if loss == "ce":
        ce = cross_entropy(logits, labels, reduction="none")
        return -ce if targeted else ce
    if loss == "margin":
        m = margin(logits, labels)
        return minimum(-m if targeted else m, Tensor(xp.asarray(kappa, dtype=logits.dtype)))
    raise ValueError(f"attack_loss: loss must be one of {LOSSES}, got {loss!r}")


def trades_kl(logits_adv: Tensor, logits_clean: Tensor) -> Tensor:
    """Per sample: KL(softmax(clean) || softmax(adv)), TRADES' robustness term (Zhang et al. 2019)."""
    p = softmax(logits_clean, dim=1)
    return (p * (log_softmax(logits_clean, dim=1) - log_softmax(logits_adv, dim=1))).sum(dim=1)
