"""The one rule for dimension arguments, PyTorch's: a dim of an n-dimensional tensor lies in [-n, n - 1]
(negative dims count from the end; a 0-d tensor takes -1 and 0). Anything else raises IndexError — never a
silent wrap-around."""


def normalize_dim(dim, ndim: int, op: str = "dim") -> int:
    """``dim`` as a non-negative axis of an ``ndim``-dimensional tensor, or IndexError naming the range."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of [{-size}, {size - 1}], "
                         f"but got {dim})")
    return int(dim) % size


def normalize_dims(dims, ndim: int, op: str = "dim") -> tuple:
    """``dims`` (None = all, an int, or a sequence) as a sorted tuple of distinct non-negative axes."""
    if dims is None:
        return tuple(range(ndim))
    dims = (dims,) if isinstance(dims, int) or hasattr(dims, "__index__") else tuple(dims)
    return tuple(sorted({normalize_dim(d, ndim, op) for d in dims}))


def dim_or_axis(dim, axis, default=None):
    """torch's ``dim``; ``axis`` (NumPy's name) is accepted as an alias. Passing both is an error."""
    if dim is not None and axis is not None:
        raise TypeError("pass either dim or axis (its NumPy alias), not both")
    value = dim if dim is not None else axis
    return default if value is None else value
