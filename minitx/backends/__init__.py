"""Backend selection: which implementation the autograd ops call for their hot kernels.

``"numpy"`` is the reference maths in ``numpy_ref.py``; ``"cpp"`` is the C++ extension
(``minitx._C``, wrapped by ``cpp.py``). Choose with ``minitx.set_backend(name)``, the context manager
``with minitx.backend(name): ...``, or the environment variable ``MINITX_BACKEND``. The default is
``"cpp"`` when the extension is built. ``kernel(name, *arrays)`` below is the one place that picks an
implementation: the C++ kernels work in float32 only, so a float64 call (e.g. inside gradcheck) runs the
NumPy reference, with the same meaning. ``attention_path`` states when attention runs fused.
"""
import contextlib
import os

import numpy as np

from minitx.backends import numpy_ref

BACKENDS = ("numpy", "cpp")


def _load_cpp():
    try:
        from minitx.backends import cpp
    except ImportError:
        return None
    return cpp


_cpp = _load_cpp()
_active = os.environ.get("MINITX_BACKEND", "cpp" if _cpp is not None else "numpy")
if _active not in BACKENDS:
    raise ValueError(f"MINITX_BACKEND must be one of {BACKENDS}, got {_active!r}")


def cpp_available() -> bool:
    return _cpp is not None


def get_backend() -> str:
    """The name of the active backend: "numpy" or "cpp"."""
    return _active


def set_backend(name: str) -> None:
    """Switch the kernels used by the autograd ops ("numpy" reference or "cpp" extension)."""
    global _active
    if name not in BACKENDS:
        raise ValueError(f"set_backend: unknown backend {name!r}; choose one of {BACKENDS}")
    if name == "cpp" and _cpp is None:
        raise RuntimeError("set_backend('cpp'): the C++ extension minitx._C is not built; run `pip install -e .`")
    _active = name


@contextlib.contextmanager
def backend(name: str):
    """``with minitx.backend("numpy"): ...`` runs the block on that backend, then restores the previous one."""
    previous = _active
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


# Kernels that take integer arrays too (the NumPy reference then runs: the C++ kernels are float32).
_INTEGER_KERNELS = {"matmul", "matmul_tn", "matmul_nt"}


# Shape rules of C++ kernels that do not take every shape their NumPy twin takes: attention is written
# for (B, H, L, D); the optimizer step updates param and its moments in place, so they must be C-contiguous
# and writeable (the gradient may be any view).
_CPP_SHAPE_RULES = {"attention_forward": lambda q, *rest: q.ndim == 4,
                    "attention_backward": lambda dout, q, *rest: q.ndim == 4,
                    "adamw_step": lambda param, grad, *state: all(a.flags.c_contiguous and a.flags.writeable
                                                                  for a in (param, *state))}


def _op_name(kernel_name: str) -> str:
    return kernel_name.rsplit("_forward", 1)[0].rsplit("_backward", 1)[0]


def _check_floating(name: str, arrays) -> None:
    """PyTorch's rule: the nn kernels (softmax, layer norm, GELU, attention, cross-entropy) refuse integer input."""
    if name in _INTEGER_KERNELS:
        return
    for a in arrays:
        if a.dtype.kind != "f":
            raise RuntimeError(f"{_op_name(name)}: not implemented for dtype {a.dtype}; it takes floating-point "
                               f"tensors (convert with .float())")


def _cpp_takes(name: str, arrays) -> bool:
    """Whether the C++ kernel ``name`` computes these arrays: it exists, every array is float32, and its
    shape rule (if any) holds. Otherwise the NumPy reference runs, with the same meaning."""
    return (_active == "cpp" and hasattr(_cpp, name) and all(a.dtype == np.float32 for a in arrays)
            and _CPP_SHAPE_RULES.get(name, lambda *a: True)(*arrays))


def kernel(name: str, *arrays):
    """The implementation of kernel ``name`` for these input arrays: the one place that picks it.

    The C++ kernel runs when the backend is "cpp" and it takes these arrays (float32, and a shape it is
    written for); otherwise the NumPy reference (float64, integer matmul, other shapes). Integer input to a
    floating-point-only kernel raises RuntimeError, as in PyTorch.
    """
    arrays = [a for a in arrays if isinstance(a, np.ndarray)]
    _check_floating(name, arrays)
    return getattr(_cpp, name) if _cpp_takes(name, arrays) else getattr(numpy_ref, name)


def attention_path(query: np.ndarray, key: np.ndarray, value: np.ndarray, dropout_p: float, need_weights: bool) -> str:
    """"fused" or "unfused": how scaled-dot-product attention runs (minitx/ops/attention.py).

    Fused (one Function around the flash kernel, O(L) memory) when the C++ kernel takes the inputs and
    nothing needs the L×L probabilities (no ``need_weights``); the kernel does dropout for p < 1. Otherwise
    unfused: the Tensor ops (matmul, softmax), which form P. Both give the same numbers (minitx/masks.py)
    and draw the same dropout mask from the same seed (numpy_ref.attention_dropout_scale).
    """
    if dropout_p >= 1 or need_weights:
        return "unfused"
    return "fused" if _cpp_takes("attention_forward", [query, key, value]) else "unfused"
