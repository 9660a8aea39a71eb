"""Backend selection: which implementation the autograd ops call for their hot kernels.

``"numpy"`` is the reference maths in ``numpy_ref.py``; ``"cpp"`` is the C++ extension
(``minitx._C``, wrapped by ``cpp.py``). Choose with ``minitx.set_backend(name)``, the context manager
``with minitx.backend(name): ...``, or the environment variable ``MINITX_BACKEND``. The default is
``"cpp"`` when the extension is built. The C++ kernels work in float32 only; a float64 call (e.g.
inside gradcheck) always runs the NumPy reference.
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


def kernel(name: str, *arrays):
    """The implementation of kernel ``name`` for these input arrays under the active backend.

    The C++ kernel is used only when the backend is "cpp", it provides ``name``, and every array
    argument is float32.
    """
    if _active == "cpp" and hasattr(_cpp, name):
        if all(a.dtype == np.float32 for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"):
            return getattr(_cpp, name)
    return getattr(numpy_ref, name)
