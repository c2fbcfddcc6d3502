"""Neural-network building blocks with PyTorch's names: ``Module``, ``Parameter``, containers, layers,
losses, ``init`` and ``summary``.

``nerve.nn.functional`` is ``nerve.functional`` (so ``import nerve.nn.functional as F`` works too).
"""
import sys as _sys

from nerve import functional
from nerve.nn import init, utils
from nerve.nn.activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh
from nerve.nn.activation import GLU, Hardshrink, RReLU, Softmin, Softshrink, Threshold
from nerve.nn.activation import (
    CELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LogSigmoid, Mish, PReLU, ReLU6, Softsign, Tanhshrink,
)
from nerve.nn.attention import MultiheadAttention
from nerve.nn.containers import Identity, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from nerve.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from nerve.nn.conv import Conv3d, ConvTranspose3d
from nerve.nn.distance import CosineSimilarity, PairwiseDistance
from nerve.nn.dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
from nerve.nn.embedding import Embedding
from nerve.nn.linear import Bilinear, Flatten, Linear, Unflatten
from nerve.nn.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from nerve.nn.loss import (
    CosineEmbeddingLoss, GaussianNLLLoss, HingeEmbeddingLoss, MarginRankingLoss, MultiLabelSoftMarginLoss,
    MultiMarginLoss, PoissonNLLLoss, SoftMarginLoss, TripletMarginLoss,
)
from nerve.nn.module import IncompatibleKeys, Module, RemovableHandle
from nerve.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm
from nerve.nn.normalization import BatchNorm3d, InstanceNorm3d, RMSNorm
from nerve.nn.parameter import Parameter, UninitializedBuffer, UninitializedParameter
from nerve.nn.recurrent import _CellBase as RNNCellBase, _RNNBase as RNNBase  # for isinstance checks
from nerve.nn.pooling import (
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, MaxPool1d,
    MaxPool2d,
)
from nerve.nn.pooling import (
    AdaptiveAvgPool3d, AdaptiveMaxPool3d, AvgPool3d, MaxPool3d, MaxUnpool1d, MaxUnpool2d, MaxUnpool3d,
)
from nerve.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from nerve.nn.freeze import freeze, is_frozen, layerwise_lr_groups, trainable_parameters, unfreeze
from nerve.nn.summary import summary
from nerve.nn.transformer import (
    LearnedPositionalEncoding, SinusoidalPositionalEncoding, TransformerDecoder, TransformerDecoderLayer,
    TransformerEncoder, TransformerEncoderLayer,
)
from nerve.nn.upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from nerve.nn.vision import (
    ChannelShuffle, CTCLoss, Fold, LocalResponseNorm, PixelShuffle, PixelUnshuffle, Softmax2d, Unfold,
)
from nerve.nn.padding import *  # noqa: F401,F403
from nerve.nn.padding import __all__ as _padding
from nerve.nn.lazy import LazyConv1d, LazyConv2d, LazyConv3d, LazyLinear, Transformer
from nerve.nn.lazy import (
    LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d,
    LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d,
)
from nerve.nn.loss import MultiLabelMarginLoss, NLLLoss2d, TripletMarginWithDistanceLoss
from nerve.nn.pooling import LPPool1d, LPPool2d, LPPool3d
from nerve.nn.embedding import EmbeddingBag
from nerve.nn import parallel
from nerve.nn.parallel import DataParallel, SyncBatchNorm

_sys.modules[__name__ + ".functional"] = functional

__all__ = [
    "freeze", "unfreeze", "is_frozen", "trainable_parameters", "layerwise_lr_groups",
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "CrossEntropyLoss", "Dropout", "ELU", "Embedding",
    "Flatten", "GELU", "HuberLoss", "Identity", "IncompatibleKeys", "KLDivLoss", "L1Loss", "LayerNorm",
    "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "Module", "ModuleDict", "ModuleList", "NLLLoss",
    "Parameter", "ReLU", "RemovableHandle", "SiLU", "Sequential", "Sigmoid", "SmoothL1Loss", "Softmax",
    "Softplus", "Tanh", "Unflatten", "functional", "init", "summary", "utils",
    "LearnedPositionalEncoding", "MultiheadAttention", "SinusoidalPositionalEncoding", "TransformerDecoder",
    "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer",
    "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d",
    "BatchNorm2d", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "Dropout1d", "Dropout2d",
    "MaxPool1d", "MaxPool2d", "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d",
    "CELU", "Hardsigmoid", "Hardswish", "Hardtanh", "LogSigmoid", "Mish", "PReLU", "ReLU6", "SELU", "Softsign",
    "Tanhshrink", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "ParameterDict", "ParameterList",
    "AvgPool3d", "Conv3d", "ConvTranspose3d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "Softmin",
    "AdaptiveAvgPool3d", "AdaptiveMaxPool3d",
    "GLU", "Hardshrink", "RReLU", "Softshrink", "Threshold", "CosineSimilarity", "PairwiseDistance", "AlphaDropout",
    "Bilinear", "RMSNorm", "CosineEmbeddingLoss", "GaussianNLLLoss", "HingeEmbeddingLoss", "MarginRankingLoss",
    "MultiLabelSoftMarginLoss", "MultiMarginLoss", "PoissonNLLLoss", "SoftMarginLoss", "TripletMarginLoss",
    "CTCLoss", "Fold", "PixelShuffle", "PixelUnshuffle", "Unfold",
    "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyLinear", "Transformer", "DataParallel", "SyncBatchNorm",
    "parallel", "BatchNorm3d", "InstanceNorm3d", "Dropout3d", "ChannelShuffle", "LocalResponseNorm", "Softmax2d",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
    "LazyConvTranspose3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d", "MultiLabelMarginLoss",
    "NLLLoss2d", "TripletMarginWithDistanceLoss", "LPPool1d", "LPPool2d", "LPPool3d", "EmbeddingBag",
    "FeatureAlphaDropout", "RNNBase", "RNNCellBase", "UninitializedBuffer", "UninitializedParameter",
] + _padding
