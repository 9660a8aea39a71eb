"""Elementwise ops: arithmetic, powers, exp/log, and the activation functions.

Binary ops broadcast like NumPy; their backward reduces each gradient to its input's shape with
``unbroadcast`` (see broadcast.py). Unary ops multiply the incoming gradient by the local derivative.
"""
import numpy as np

from minitx.autograd import Function
from minitx.backends import kernel
from minitx.ops.broadcast import broadcast_shapes, unbroadcast

DEFAULT_DTYPE = np.float32  # the default float dtype (torch.get_default_dtype()): Python floats, int / int


# ---------------------------------------------------------------- type promotion (PyTorch's rule)
def result_dtype(x: np.ndarray, y: np.ndarray, true_divide: bool = False) -> np.dtype:
    """The dtype of a binary op's result: float with float -> the wider; float with integer -> the float's
    dtype (NumPy would widen int64 * float32 to float64); integer with integer -> integer, except that true
    division of integers gives the default float dtype (float32)."""
    x_float, y_float = x.dtype.kind == "f", y.dtype.kind == "f"
    if x_float != y_float:
        return x.dtype if x_float else y.dtype
    if not x_float and true_divide:
        return np.dtype(DEFAULT_DTYPE)
    return np.result_type(x.dtype, y.dtype)


def promote(x: np.ndarray, y: np.ndarray, true_divide: bool = False) -> tuple:
    dtype = result_dtype(x, y, true_divide)
    return x.astype(dtype, copy=False), y.astype(dtype, copy=False)


def as_floating(x: np.ndarray) -> np.ndarray:
    """Integer and boolean input to exp, log, sqrt, tanh, sigmoid becomes float32, as in PyTorch."""
    return x if x.dtype.kind == "f" else x.astype(DEFAULT_DTYPE)


# ---------------------------------------------------------------- binary arithmetic
class Add(Function):
    """z = x + y;  dz/dx = 1, dz/dy = 1."""

    @staticmethod
    def forward(ctx, x, y):
        broadcast_shapes("add", x.shape, y.shape)
        x, y = promote(x, y)
        ctx.save(x.shape, y.shape)
        return x + y

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.saved
        return unbroadcast(grad, x_shape), unbroadcast(grad, y_shape)


class Sub(Function):
    """z = x - y;  dz/dx = 1, dz/dy = -1."""

    @staticmethod
    def forward(ctx, x, y):
        broadcast_shapes("sub", x.shape, y.shape)
        x, y = promote(x, y)
        ctx.save(x.shape, y.shape)
        return x - y

    @staticmethod
    def backward(ctx, grad):
        x_shape, y_shape = ctx.saved
        return unbroadcast(grad, x_shape), unbroadcast(-grad, y_shape)


class Mul(Function):
    """z = x * y;  dz/dx = y, dz/dy = x."""

    @staticmethod
    def forward(ctx, x, y):
        broadcast_shapes("mul", x.shape, y.shape)
        x, y = promote(x, y)
        ctx.save(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        # BEGIN SOLUTION hint="product rule: dx = grad * y, dy = grad * x, each reduced to its input's shape with unbroadcast; None for an input with ctx.needs_input_grad False"
        dx = unbroadcast(grad * y, x.shape) if ctx.needs_input_grad[0] else None
        dy = unbroadcast(grad * x, y.shape) if ctx.needs_input_grad[1] else None
        return dx, dy
        # END SOLUTION


class Div(Function):
    """z = x / y;  dz/dx = 1/y, dz/dy = -x/y²."""

    @staticmethod
    def forward(ctx, x, y):
        broadcast_shapes("div", x.shape, y.shape)
        x, y = promote(x, y, true_divide=True)
        ctx.save(x, y)
        return x / y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        # BEGIN SOLUTION hint="quotient rule: dx = grad / y, dy = -grad * x / y², each reduced with unbroadcast; None for an input with ctx.needs_input_grad False"
        dx = unbroadcast(grad / y, x.shape) if ctx.needs_input_grad[0] else None
        dy = unbroadcast(-grad * x / (y * y), y.shape) if ctx.needs_input_grad[1] else None
        return dx, dy
        # END SOLUTION


class Pow(Function):
    """z = x ** y;  dz/dx = y x^(y-1) (0 where y = 0, so 0**0 has gradient 0 like PyTorch),
    dz/dy = x^y ln x (defined for x > 0; 0 elsewhere)."""

    @staticmethod
    def forward(ctx, x, y):
        broadcast_shapes("pow", x.shape, y.shape)
        x, y = promote(x, y)
        z = np.power(x, y)
        ctx.save(x, y, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y, z = ctx.saved
        # BEGIN SOLUTION hint="dz/dx = y x^(y-1), 0 where y == 0; dz/dy = z ln x for x > 0, 0 elsewhere (silence NumPy with np.errstate); multiply by grad, unbroadcast, keep z's dtype"
        dx = dy = None
        if ctx.needs_input_grad[0]:
            with np.errstate(divide="ignore", invalid="ignore"):
                local = np.where(y == 0, 0, y * np.power(x, y - 1)).astype(z.dtype, copy=False)
            dx = unbroadcast(grad * local, x.shape)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_x = np.where(x > 0, np.log(np.where(x > 0, x, 1)), 0)
            dy = unbroadcast(grad * z * log_x, y.shape)
        return dx, dy
        # END SOLUTION


# ---------------------------------------------------------------- unary maths
class Neg(Function):
    """z = -x;  dz/dx = -1."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    """z = eˣ;  dz/dx = eˣ = z."""

    @staticmethod
    def forward(ctx, x):
        z = np.exp(as_floating(x))
        ctx.save(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved
        # BEGIN SOLUTION hint="d/dx eˣ = eˣ = z (saved by forward)"
        return grad * z
        # END SOLUTION


class Log(Function):
    """z = ln x;  dz/dx = 1/x."""

    @staticmethod
    def forward(ctx, x):
        x = as_floating(x)
        ctx.save(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        # BEGIN SOLUTION hint="d/dx ln x = 1/x"
        return grad / x
        # END SOLUTION


class Sqrt(Function):
    """z = √x;  dz/dx = 1 / (2√x)."""

    @staticmethod
    def forward(ctx, x):
        z = np.sqrt(as_floating(x))
        ctx.save(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved
        # BEGIN SOLUTION hint="d/dx √x = 1 / (2√x) = 1 / (2z)"
        return grad / (2.0 * z)
        # END SOLUTION


class Abs(Function):
    """z = |x|;  dz/dx = sign(x) (0 at x = 0, like PyTorch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * np.sign(x)


class Cast(Function):
    """Change the dtype; the gradient is cast back to the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.save(x.dtype)
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        (dtype,) = ctx.saved
        return grad.astype(dtype)


# ---------------------------------------------------------------- activations
class Tanh(Function):
    """z = tanh x;  dz/dx = 1 - z²."""

    @staticmethod
    def forward(ctx, x):
        z = np.tanh(as_floating(x))
        ctx.save(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved
        # BEGIN SOLUTION hint="d/dx tanh x = 1 - tanh² x = 1 - z²"
        return grad * (1.0 - z * z)
        # END SOLUTION


class Sigmoid(Function):
    """σ(x) = 1 / (1 + e^-x), computed stably on both signs;  dσ/dx = σ(1 - σ)."""

    @staticmethod
    def forward(ctx, x):
        x = as_floating(x)
        e = np.exp(-np.abs(x))  # never overflows
        z = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        ctx.save(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved
        # BEGIN SOLUTION hint="dσ/dx = σ(1 - σ) = z (1 - z)"
        return grad * z * (1.0 - z)
        # END SOLUTION


class Relu(Function):
    """relu(x) = max(x, 0);  derivative 1 where x > 0 else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save(x > 0)
        return np.maximum(x, 0).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved
        return grad * positive


class Gelu(Function):
    """GELU(x) = x Φ(x) (Hendrycks & Gimpel, 2016): exact erf form or GPT-2's tanh form.

    Formulas for both forms and their derivatives: ``minitx.reference.gelu_forward/backward``.
    """

    @staticmethod
    def forward(ctx, x, approximate="none"):
        ctx.save(x, approximate)
        # reshape: the C++ adapter's np.ascontiguousarray turns a 0-d array into shape (1,)
        return kernel("gelu_forward", x)(x, approximate).reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, approximate = ctx.saved
        return kernel("gelu_backward", grad, x)(grad, x, approximate).reshape(x.shape)
