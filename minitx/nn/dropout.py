"""``Dropout`` (Srivastava et al., 2014): zero activations with probability p while training."""
from minitx.nn import functional as F
from minitx.nn.module import Module


class Dropout(Module):
    """Training: y = x · m / (1 - p), m ~ Bernoulli(1 - p). Eval (``model.eval()``): y = x."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
