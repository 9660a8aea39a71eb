"""Activation modules, and ``get_activation(name)`` for config strings ("relu", "gelu", "gelu_new", …)."""
from minitx.nn import functional as F
from minitx.nn.module import Module


class ReLU(Module):
    """max(0, x)."""

    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    """x Φ(x) (Hendrycks & Gimpel, 2016); ``approximate="tanh"``: 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))),
    the form GPT-2 uses."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


# HF config names -> modules: BERT's "gelu" is the exact erf form, GPT-2's "gelu_new" the tanh form.
_ACTIVATIONS = {
    "relu": lambda: ReLU(),
    "gelu": lambda: GELU("none"),
    "gelu_tanh": lambda: GELU("tanh"),
    "gelu_new": lambda: GELU("tanh"),
    "gelu_pytorch_tanh": lambda: GELU("tanh"),
}


def get_activation(name: str) -> Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()
