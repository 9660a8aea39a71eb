"""Adapter from the autograd ops to the C++ kernels (``minitx._C``).

The kernels take C-contiguous float32 arrays and validate strictly; the ops may hand over views
(transposes, slices), so this layer makes them contiguous first.
"""
import numpy as np

from minitx import _C


def softmax_forward(x: np.ndarray) -> np.ndarray:
    return _C.softmax_forward(np.ascontiguousarray(x))
