"""``Linear``: the affine map y = x Wᵀ + b, the workhorse of every Transformer."""
import math

import numpy as np

from minitx.nn import functional as F
from minitx.nn.module import Module, Parameter
from minitx.random import default_generator


def uniform_init(shape, bound: float) -> np.ndarray:
    """U(-bound, bound) float32 samples from the global generator (``minitx.manual_seed``)."""
    return default_generator().uniform(-bound, bound, size=shape).astype(np.float32)


class Linear(Module):
    """y = x Wᵀ + b, W: (out_features, in_features) as in ``torch.nn.Linear``.

    Init like PyTorch: W and b ~ U(-1/√in, 1/√in) (kaiming-uniform with a = √5 reduces to this).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = Parameter(uniform_init((out_features, in_features), bound))
        self.register_parameter("bias", Parameter(uniform_init((out_features,), bound)) if bias else None)

    def forward(self, x):  # x: (..., in) -> (..., out)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
