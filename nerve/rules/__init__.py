"""Learning rules: the same model, data, optimiser and ``fit``; only how the update directions are found changes.

A rule writes update directions into each parameter's ``.grad`` and any optimiser applies them.
Supervised rules (``Backprop``, ``FeedbackAlignment``, ``DirectFeedbackAlignment``) act inside
``with rule:``; unsupervised ones (``Hebbian``, ``Oja``, ``Sanger``, ``KrotovHopfield``, spike-timing-dependent
plasticity ``STDP``) in ``rule.step(x)``.
"""
from nerve.rules.base import Backprop, Rule, named_layers
from nerve.rules.feedback import DirectFeedbackAlignment, FeedbackAlignment
from nerve.rules.hebbian import Hebbian, KrotovHopfield, Oja, Sanger
from nerve.rules.stdp import STDP
from nerve.rules.alignment import alignment, angle

__all__ = ["Rule", "Backprop", "FeedbackAlignment", "DirectFeedbackAlignment", "Hebbian", "Oja", "Sanger",
           "KrotovHopfield", "STDP", "alignment", "angle", "named_layers"]
