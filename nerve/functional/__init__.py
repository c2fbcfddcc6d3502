"""Stateless network functions (``import nerve.functional as F``), with PyTorch's names and semantics.

One module per family: ``activation``, ``loss``, ``dropout``, ``normalization``, ``distance`` (similarity) and
``spatial`` (convolution, pooling, padding, resizing). Each re-exports the primitives of its family from
``nerve.ops`` and composes the rest from them; linear, embedding, attention and the recurrent cells are
primitives re-exported here as they are.
"""
from nerve.functional import (
    activation, compat, ctc, distance, dropout as _dropout, loss, mha, normalization, spatial, vision,
)
from nerve.functional.activation import *  # noqa: F401,F403
from nerve.functional.distance import *  # noqa: F401,F403
from nerve.functional.dropout import *  # noqa: F401,F403
from nerve.functional.loss import *  # noqa: F401,F403
from nerve.functional.normalization import *  # noqa: F401,F403
from nerve.functional.spatial import *  # noqa: F401,F403
from nerve.functional.ctc import *  # noqa: F401,F403
from nerve.functional.compat import *  # noqa: F401,F403
from nerve.functional.mha import *  # noqa: F401,F403
from nerve.functional.vision import *  # noqa: F401,F403
from nerve import ops as _ops
from nerve.ops import (  # noqa: F401
    attention_weights, bilinear, gru_cell, lengths_to_mask, linear, linear_gelu, lstm_cell, one_hot, recurrent_layer,
    rnn_relu_cell, rnn_tanh_cell, scaled_dot_product_attention,
)

# NOTE: by attribute, since "from nerve.ops import embedding" reads as the submodule nerve.ops.embedding
embedding = _ops.embedding

_PRIMITIVES = ["attention_weights", "bilinear", "embedding", "gru_cell", "lengths_to_mask", "linear", "linear_gelu",
               "lstm_cell", "one_hot", "recurrent_layer", "rnn_relu_cell", "rnn_tanh_cell",
               "scaled_dot_product_attention"]
__all__ = sorted(_PRIMITIVES + activation.__all__ + distance.__all__ + _dropout.__all__ + loss.__all__
                 + normalization.__all__ + spatial.__all__ + ctc.__all__ + vision.__all__
                 + compat.__all__ + mha.__all__)
