"""``nerve.utils.tensorboard``: ``SummaryWriter`` under PyTorch's module path (nerve writes event files itself,
without TensorBoard or TensorFlow installed)."""
from nerve.train.tensorboard import SummaryWriter

__all__ = ["SummaryWriter"]
