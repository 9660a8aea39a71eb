"""The position-wise feed-forward block (Vaswani et al., 2017, §3.3)."""
from minitx.nn.activation import get_activation
from minitx.nn.dropout import Dropout
from minitx.nn.linear import Linear
from minitx.nn.module import Module


class FeedForward(Module):
    """FFN(x) = W₂ · dropout(act(W₁ x + b₁)) + b₂, applied to each position independently.

    d_model -> dim_feedforward (usually 4 · d_model) -> d_model. The dropout after W₂ belongs to the
    residual connection, so it lives in the Transformer layer.
    """

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.linear1 = Linear(d_model, dim_feedforward)
        self.activation = get_activation(activation)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model)

    def forward(self, x):  # (B, L, d_model) -> (B, L, d_model)
        return self.linear2(self.dropout(self.activation(self.linear1(x))))
