"""Adversarial robustness: attacks with torchattacks' names and call convention (``x_adv = PGD(model, eps=0.3)(x, y)``),
adversarial training as a ``train_step`` for ``fit``, and an evaluation that checks every perturbation."""
from nerve.robust.attack import Attack, batch_norms
from nerve.robust.blackbox import MultiAttack, Square, Transfer
from nerve.robust.evaluate import (
    ATTACKS, RobustnessReport, adversarial_grid, make_attack, plot_adversarial_examples, robust_accuracy,
)
from nerve.robust.gradient import FFGSM, FGM, FGSM, MIFGSM, PGD, PGDL2
from nerve.robust.losses import attack_loss, margin, trades_kl
from nerve.robust.minimal import CW, DeepFool
from nerve.robust.training import METHODS, AdversarialStep

__all__ = ["ATTACKS", "METHODS", "AdversarialStep", "Attack", "CW", "DeepFool", "FFGSM", "FGM", "FGSM", "MIFGSM",
           "MultiAttack", "PGD", "PGDL2", "RobustnessReport", "Square", "Transfer", "adversarial_grid",
           "attack_loss", "batch_norms", "make_attack", "margin", "plot_adversarial_examples", "robust_accuracy",
           "trades_kl"]
