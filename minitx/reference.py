"""``minitx.reference``: the NumPy reference of every kernel in ``minitx.kernels``.

Same names and signatures, the maths written plainly (it lives in ``minitx/backends/numpy_ref.py``,
which the "numpy" backend runs). Tests compare each C++ kernel with its twin here:

    from minitx import kernels, reference
    np.testing.assert_allclose(kernels.softmax_forward(x), reference.softmax_forward(x), atol=1e-6)
"""
from minitx.backends.numpy_ref import (  # noqa: F401
    adamw_step,
    attention_backward,
    attention_dropout_scale,
    attention_forward,
    cross_entropy_backward,
    cross_entropy_forward,
    erf,
    gelu_backward,
    gelu_forward,
    layer_norm_backward,
    layer_norm_forward,
    log_softmax_backward,
    log_softmax_forward,
    matmul,
    matmul_nt,
    matmul_tn,
    softmax_backward,
    softmax_forward,
)

__all__ = [
    "matmul", "matmul_tn", "matmul_nt", "softmax_forward", "softmax_backward", "log_softmax_forward",
    "log_softmax_backward", "layer_norm_forward", "layer_norm_backward", "gelu_forward", "gelu_backward", "erf",
    "attention_forward", "attention_backward", "attention_dropout_scale",
    "cross_entropy_forward", "cross_entropy_backward", "adamw_step",
]
