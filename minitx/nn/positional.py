"""Positional encodings: attention is order-blind, so each position's vector gets a position signal added
(sinusoidal, learned), or each attention score a penalty for distance (ALiBi)."""
import math

import numpy as np

from minitx.nn.embedding import Embedding
from minitx.nn.module import Module
from minitx.tensor import Tensor


def sinusoidal_table(max_len: int, d_model: int) -> np.ndarray:
    """Vaswani et al., 2017, §3.5:  PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d)).

    Each pair of dimensions is a rotation at its own frequency, so PE(pos + k) is a linear function of PE(pos).
    """
    position = np.arange(max_len, dtype=np.float64)[:, None]                        # (max_len, 1)
    inv_freq = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)     # (ceil(d/2),)
    table = np.zeros((max_len, d_model), dtype=np.float64)
    table[:, 0::2] = np.sin(position * inv_freq)
    table[:, 1::2] = np.cos(position * inv_freq[: d_model // 2])
    return table.astype(np.float32)


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sinusoidal table (not a parameter, not in the state dict): x (B, L, D) -> x + PE[:L]."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.table = sinusoidal_table(max_len, d_model)

    def forward(self, x, offset: int = 0):
        length = x.shape[1]
        if offset + length > self.table.shape[0]:
            raise ValueError(f"SinusoidalPositionalEncoding: positions up to {offset + length} exceed max_len {self.table.shape[0]}")
        return x + Tensor(self.table[offset:offset + length], _copy=False)


class LearnedPositionalEmbedding(Module):
    """A learned vector per position (BERT, GPT-2): x (B, L, D) -> x + P[offset : offset + L]."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.embedding = Embedding(max_len, d_model)

    def forward(self, x, offset: int = 0):
        length = x.shape[1]
        if offset + length > self.embedding.num_embeddings:
            raise ValueError(f"LearnedPositionalEmbedding: positions up to {offset + length} exceed max_len "
                             f"{self.embedding.num_embeddings}")
        return x + self.embedding(np.arange(offset, offset + length))


def alibi_slopes(num_heads: int) -> np.ndarray:
    """ALiBi's default head slopes (Press et al., 2022, "Train Short, Test Long", §3): for n heads, n a power of
    two, the geometric sequence m_h = 2^(-8h/n), h = 1..n (8 heads: 1/2, 1/4, ..., 1/256). Otherwise the slopes
    of the power of two just below n, then every other slope of the one above (the paper's code; BLOOM's too).
    """
    if num_heads < 1:
        raise ValueError(f"alibi_slopes: num_heads must be >= 1, got {num_heads}")

    def geometric(n: int) -> np.ndarray:
        return 2.0 ** (-8.0 * np.arange(1, n + 1) / n)

    below = 2 ** int(math.floor(math.log2(num_heads)))
    extra = geometric(2 * below)[0::2][: num_heads - below]
    return np.concatenate([geometric(below), extra]).astype(np.float32)


def alibi_bias(slopes, length: int) -> np.ndarray:
    """The additive attention mask of a bidirectional ALiBi encoder: (1, H, L, L) with

        bias[h, i, j] = -m_h · |i - j|,        so  P = softmax(Q Kᵀ/√d + bias)

    no position vectors at all: head h down-weights a key k tokens away by e^(-m_h·k), a steep slope makes a
    local head, slope 0 a global one. Symmetric in i, j as in MosaicBERT (Portes et al., 2023); GPT-style
    (causal) ALiBi only ever sees j <= i, where |i - j| = i - j.
    """
    slopes = np.asarray(slopes, dtype=np.float32)                                   # (H,)
    distance = np.abs(np.arange(length)[:, None] - np.arange(length)[None, :])      # (L, L)
    return (-slopes[:, None, None] * distance.astype(np.float32))[None]             # (1, H, L, L)
