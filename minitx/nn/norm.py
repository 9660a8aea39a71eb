"""``LayerNorm`` (Ba, Kiros & Hinton, 2016): normalise each position's features, then scale and shift."""
import numpy as np

from minitx.nn import functional as F
from minitx.nn.module import Module, Parameter


class LayerNorm(Module):
    """y = (x - mean(x)) / √(var(x) + eps) · γ + β over the last axis; γ = 1, β = 0 at init.

    ``eps`` matters for parity: PyTorch's default is 1e-5, BERT uses 1e-12.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        self.normalized_shape, self.eps = int(normalized_shape), eps
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.float32))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):  # x: (..., normalized_shape)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"
