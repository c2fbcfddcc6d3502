"""Training: the ``fit`` loop, callbacks, metrics, and checkpoints that resume exactly."""
from nerve.train import metrics
from nerve.train.callbacks import (
    AlignmentLogger, Callback, CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN,
)
from nerve.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from nerve.train.history import History
from nerve.train.loop import Trainer, evaluate, fit, predict
from nerve.train.progress import ProgressBar
from nerve.train.tensorboard import SummaryWriter, TensorBoard

__all__ = ["fit", "evaluate", "predict", "Trainer", "History", "Callback", "ProgressBar", "EarlyStopping",
           "ModelCheckpoint", "TerminateOnNaN", "LearningRateScheduler", "CSVLogger", "AlignmentLogger", "TensorBoard",
           "SummaryWriter", "Checkpoint", "save_checkpoint", "load_checkpoint", "metrics"]
