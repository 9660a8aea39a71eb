"""Neural-network building blocks, written by hand on minitx's Tensor. ``functional`` holds the functions.

    module.py      Module, Parameter, ModuleList, Sequential
    linear.py      Linear                   embedding.py  Embedding
    norm.py        LayerNorm                dropout.py    Dropout
    activation.py  ReLU, GELU               feedforward.py FeedForward
    attention.py   MultiHeadAttention (masks, KV cache)
    positional.py  sinusoidal and learned positional encodings, ALiBi's distance penalty
    transformer.py encoder/decoder layers (pre-/post-LN) and stacks, Transformer
"""
from minitx.nn import functional  # noqa: F401
from minitx.nn.activation import GELU, ReLU, get_activation
from minitx.nn.attention import AttentionOutput, MultiHeadAttention
from minitx.nn.dropout import Dropout
from minitx.nn.embedding import Embedding
from minitx.nn.feedforward import FeedForward
from minitx.nn.linear import Linear
from minitx.nn.module import Module, ModuleList, Parameter, Sequential
from minitx.nn.norm import LayerNorm
from minitx.nn.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    alibi_bias,
    alibi_slopes,
    sinusoidal_table,
)
from minitx.nn.transformer import (
    LayerOutput,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
