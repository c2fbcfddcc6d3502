"""Reference architectures."""
from nerve.models.char_rnn import CharRNN
from nerve.models.cnn import CNN1d, LeNet5, SmallCNN
from nerve.models.gan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from nerve.models.gpt import GPT
from nerve.models.mlp import MLP
from nerve.models.pretrained import pretrained
from nerve.models.snn import SpikingCNN, SpikingMLP

__all__ = ["CNN1d", "CharRNN", "GPT", "LeNet5", "MLP", "SmallCNN", "DCGANGenerator", "DCGANDiscriminator",
           "MLPGenerator", "MLPDiscriminator", "SpikingMLP", "SpikingCNN", "pretrained"]
