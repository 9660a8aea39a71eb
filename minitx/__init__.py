"""minitx: a from-scratch, educational transformer framework — NumPy autograd plus C++ kernels.

    import minitx as mx
    x = mx.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # tensor([[2., 4.]])
"""
from minitx.backends import backend, cpp_available, get_backend, set_backend
from minitx.ops.functions import abs, cat, chunk, concat, exp, log, matmul, sigmoid, split, sqrt, stack, tanh, where
from minitx.random import manual_seed
from minitx.tensor import (
    Function,
    Tensor,
    arange,
    enable_grad,
    full,
    is_grad_enabled,
    no_grad,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from minitx import nn, optim, profiler, testing  # noqa: E402

float32 = "float32"
float64 = "float64"

__version__ = "0.1.0"
