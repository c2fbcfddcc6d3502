"""Reference architectures."""
from nerve.models.char_rnn import CharRNN
from nerve.models.cnn import CNN1d, LeNet5, SmallCNN
from nerve.models.gpt import GPT
from nerve.models.mlp import MLP

__all__ = ["CNN1d", "CharRNN", "GPT", "LeNet5", "MLP", "SmallCNN"]
