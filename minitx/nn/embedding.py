"""``Embedding``: a lookup table of learned vectors, one row per token id."""
import numpy as np

from minitx.nn import functional as F
from minitx.nn.module import Module, Parameter
from minitx.random import default_generator


class Embedding(Module):
    """ids (...) -> W[ids] (..., embedding_dim), W ~ N(0, 1) like ``torch.nn.Embedding``.

    ``padding_idx``: that row starts at zero and never receives a gradient (so padding stays "nothing").
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int = None):
        super().__init__()
        if padding_idx is not None and padding_idx < 0:
            padding_idx += num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        weight = default_generator().standard_normal((num_embeddings, embedding_dim)).astype(np.float32)
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self.weight = Parameter(weight)

    def forward(self, ids):
        return F.embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}, padding_idx={self.padding_idx}"
