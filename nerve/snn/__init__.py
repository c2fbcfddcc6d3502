"""Spiking neural networks with snnTorch's names: neurons, surrogate gradients, spike encoders, losses, time loop.

``import nerve.snn as snn``: ``snn.Leaky``, ``snn.Synaptic``, ``snn.Alpha``, ``snn.RLeaky``, ``snn.Lapicque``,
``snn.AdaptiveLeaky``; ``snn.surrogate``, ``snn.spikegen``, ``snn.functional`` (SF), ``snn.spikeplot``;
``snn.reset(model)``, ``snn.detach_hidden(model)``, ``snn.TimeLoop``. STDP is ``nerve.rules.STDP``.
"""
from nerve.snn import functional, spikegen, spikeplot, surrogate
from nerve.snn.loop import Recorder, TimeLoop, detach_hidden, reset
from nerve.snn.neurons import AdaptiveLeaky, Alpha, Lapicque, Leaky, RLeaky, SpikingNeuron, Synaptic

__all__ = ["Leaky", "Synaptic", "Alpha", "RLeaky", "Lapicque", "AdaptiveLeaky", "SpikingNeuron", "surrogate",
           "spikegen", "functional", "spikeplot", "reset", "detach_hidden", "TimeLoop", "Recorder"]
