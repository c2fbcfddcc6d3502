"""Optimisers, learning-rate schedulers, gradient clipping and weight penalties."""
from nerve.nn.utils import clip_grad_norm_, clip_grad_value_
from nerve.optim import lr_scheduler, swa_utils
from nerve.optim.adadelta import Adadelta
from nerve.optim.adafactor import Adafactor
from nerve.optim.adagrad import Adagrad
from nerve.optim.adam import Adam, AdamW
from nerve.optim.adamax import Adamax
from nerve.optim.lbfgs import LBFGS, closure_step
from nerve.optim.nadam import NAdam
from nerve.optim.optimizer import Optimizer
from nerve.optim.penalties import l1_penalty, l2_penalty
from nerve.optim.radam import RAdam
from nerve.optim.rmsprop import RMSprop
from nerve.optim.rprop import ASGD, Rprop
from nerve.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "LBFGS",
           "closure_step", "lr_scheduler", "swa_utils", "clip_grad_norm_", "clip_grad_value_", "l1_penalty",
           "l2_penalty", "Adafactor", "Adamax", "ASGD", "Rprop"]
