"""The neural-network ops: softmax, log_softmax, layer_norm, dropout, embedding, cross_entropy.

Each is one Function with a hand-derived backward (cheaper and more stable than composing
elementwise ops). The hot ones call ``kernel(...)``, so the C++ backend can take over.
"""
import numpy as np

from minitx import distributed
from minitx.autograd import Function
from minitx.backends import kernel
from minitx.ops.dims import normalize_dim
from minitx.random import default_generator


def _to_last(x: np.ndarray, dim: int) -> np.ndarray:
    return np.moveaxis(x, dim, -1) if x.ndim and dim != x.ndim - 1 else x


def _from_last(x: np.ndarray, dim: int) -> np.ndarray:
    return np.moveaxis(x, -1, dim) if x.ndim and dim != x.ndim - 1 else x


def _row_kernel(name: str, *arrays) -> np.ndarray:
    """Run the row kernel ``name`` over the last axis; an empty input (a zero-width row, or no rows) gives
    an empty output of the same shape without calling it (a max over zero elements is undefined)."""
    run = kernel(name, *arrays)
    return np.empty_like(arrays[-1]) if arrays[0].size == 0 else run(*arrays)


class Softmax(Function):
    """y_i = exp(x_i - max x) / Σ_j exp(x_j - max x)   (stable form, over ``dim``).

    Backward: dx = y ∘ (dy - Σ_j dy_j y_j)  — the Jacobian diag(y) - y yᵀ applied to dy.
    A row holding NaN or +inf, or only -inf, gives a NaN row (as in PyTorch); a zero-width row gives an empty one.
    """

    @staticmethod
    def forward(ctx, x, dim=-1):  # x: (..., n)
        dim = normalize_dim(dim, x.ndim, "softmax")
        x_last = _to_last(x, dim)
        y = _row_kernel("softmax_forward", x_last)  # y: (..., n)
        ctx.save(y, dim)
        return _from_last(y, dim)

    @staticmethod
    def backward(ctx, grad):
        y, dim = ctx.saved
        g = _to_last(grad, dim)
        return _from_last(_row_kernel("softmax_backward", g, y), dim)


class LogSoftmax(Function):
    """y_i = x_i - log Σ_j exp(x_j)  (computed as (x_i - m) - log Σ_j exp(x_j - m), m = max x).

    Backward: dx = dy - softmax(x) Σ_j dy_j.
    """

    @staticmethod
    def forward(ctx, x, dim=-1):
        dim = normalize_dim(dim, x.ndim, "log_softmax")
        y = _row_kernel("log_softmax_forward", _to_last(x, dim))
        ctx.save(y, dim)
        return _from_last(y, dim)

    @staticmethod
    def backward(ctx, grad):
        y, dim = ctx.saved
        return _from_last(_row_kernel("log_softmax_backward", _to_last(grad, dim), y), dim)


class LayerNorm(Function):
    """y = (x - μ) / √(σ² + ε) · γ + β over the last axis (Ba, Kiros & Hinton, 2016).

    Backward (xhat = normalised x, g = dy·γ, means over the normalised axis):
        dx = rstd · (g - mean(g) - xhat · mean(g · xhat)),  dγ = Σ dy · xhat,  dβ = Σ dy
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):  # x: (..., n), weight/bias: (n,)
        if weight is not None and weight.shape != x.shape[-1:]:
            raise ValueError(f"layer_norm: weight has shape {weight.shape}, expected ({x.shape[-1]},) for input {x.shape}")
        if bias is not None and bias.shape != x.shape[-1:]:
            raise ValueError(f"layer_norm: bias has shape {bias.shape}, expected ({x.shape[-1]},) for input {x.shape}")
        if weight is None:  # the kernels always take an affine transform; identity when none is given
            weight_, bias_ = np.ones(x.shape[-1], x.dtype), np.zeros(x.shape[-1], x.dtype)
        else:
            weight_, bias_ = weight, (bias if bias is not None else np.zeros(x.shape[-1], x.dtype))
        y, mean, rstd = kernel("layer_norm_forward", x, weight_, bias_)(x, weight_, bias_, eps)
        ctx.save(x, weight_, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved
        dx, dw, db = kernel("layer_norm_backward", grad, x, weight)(grad, x, weight, mean, rstd)
        return dx, dw, db


class Dropout(Function):
    """Training: y = x · m / (1 - p) with m ~ Bernoulli(1 - p) (inverted dropout: eval needs no rescale).
    Srivastava et al., 2014. Backward: dx = dy · m / (1 - p).

    The backward keeps m as booleans (1 byte per element, not a 4-byte float mask), drawn from float32
    uniforms (no float64 temporary of x's size)."""

    @staticmethod
    def forward(ctx, x, p, generator):
        keep = generator.random(x.shape, dtype=np.float32) >= p  # m, (x.shape) bool
        scale = x.dtype.type(1.0 / (1.0 - p))
        ctx.save(keep, scale)
        out = x * keep
        out *= scale
        return out

    @staticmethod
    def backward(ctx, grad):
        keep, scale = ctx.saved
        dx = grad * keep
        dx *= scale
        return dx


class Embedding(Function):
    """y[...] = W[ids[...]] (a gather). Backward is a scatter-add: dW[i] = Σ over positions with id i of dy,
    so a repeated id accumulates (``np.add.at``). Rows at ``padding_idx`` get no gradient."""

    @staticmethod
    def forward(ctx, weight, ids, padding_idx=None):  # weight: (V, D), ids: (...) -> (..., D)
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):
            raise IndexError(
                f"embedding: ids must be in [0, {weight.shape[0]}), got values in [{ids.min()}, {ids.max()}]"
            )
        ctx.save(ids, weight.shape, padding_idx)
        return weight[ids]

    @staticmethod
    def backward(ctx, grad):
        ids, shape, padding_idx = ctx.saved
        dweight = np.zeros(shape, dtype=grad.dtype)
        np.add.at(dweight, ids.reshape(-1), grad.reshape(-1, shape[1]))
        if padding_idx is not None:
            dweight[padding_idx] = 0
        return dweight, None


class CrossEntropy(Function):
    """Cross-entropy between logits (N, C) and integer targets (N,), with label smoothing ε:

        q = (1 - ε) onehot(t) + ε / C,   loss_n = -Σ_c q_c log softmax(x_n)_c
        dloss_n/dx_n = softmax(x_n) - q

    Targets equal to ``ignore_index`` contribute exactly nothing (loss and gradient 0, even if their logits
    hold NaN); "mean" divides by the number of kept targets, so with none kept it is 0/0 = NaN, as in PyTorch.
    The forward keeps the logits and each row's logsumexp (N,), not the (N, C) log-probabilities: the backward
    recomputes softmax from them. The gradient is a new array, not written over the logits: those may be seen
    by others (a model's output ``logits``, of which the loss's input is often a reshaped view).
    The maths: ``cross_entropy_forward/backward`` in the kernels.
    """

    @staticmethod
    def forward(ctx, logits, target, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        n, c = logits.shape
        if target.dtype.kind not in "iu":
            raise RuntimeError(f"cross_entropy: target must hold integer class indices, got dtype {target.dtype}")
        keep = target != ignore_index
        if keep.any() and (target[keep].min() < 0 or target[keep].max() >= c):
            raise IndexError(f"cross_entropy: targets must be in [0, {c}) or ignore_index={ignore_index}, got values "
                             f"in [{target[keep].min()}, {target[keep].max()}]")
        losses, lse = kernel("cross_entropy_forward", logits)(logits, target, ignore_index, label_smoothing)
        # the number of kept targets; under data parallelism, over every rank (minitx/distributed.py)
        count = distributed.mean_denominator(int(keep.sum())) if reduction == "mean" else 1
        ctx.save(logits, lse, target, ignore_index, label_smoothing, reduction, count)
        if reduction == "none":
            return losses
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(losses.sum() / count, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        logits, lse, target, ignore_index, label_smoothing, reduction, count = ctx.saved
        with np.errstate(invalid="ignore", divide="ignore"):
            dloss = grad if reduction == "none" else np.full(logits.shape[0], grad / count, dtype=logits.dtype)
        backward = kernel("cross_entropy_backward", dloss, logits)
        return backward(dloss, logits, lse, target, ignore_index, label_smoothing), None


def dropout(x, p: float = 0.5, training: bool = True, generator: np.random.Generator = None):
    """Inverted dropout on a Tensor; identity when ``training`` is False or p == 0. Seed with
    ``minitx.manual_seed``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:  # every unit dropped; the 1/(1-p) rescale would divide by zero
        return x * 0.0
    return Dropout.apply(x, p=p, generator=generator or default_generator())
