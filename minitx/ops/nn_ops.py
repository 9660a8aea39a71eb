"""The neural-network ops: softmax, log_softmax, layer_norm, dropout, embedding, cross_entropy.

Each is one Function with a hand-derived backward (cheaper and more stable than composing
elementwise ops). The hot ones call ``kernel(...)``, so the C++ backend can take over.
"""
import numpy as np

from minitx.backends import kernel
from minitx.tensor import Function


def _to_last(x: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(x, axis, -1) if axis not in (-1, x.ndim - 1) else x


def _from_last(x: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(x, -1, axis) if axis not in (-1, x.ndim - 1) else x


class Softmax(Function):
    """y_i = exp(x_i - max x) / Σ_j exp(x_j - max x)   (stable form, over ``axis``).

    Backward: dx = y ∘ (dy - Σ_j dy_j y_j)  — the Jacobian diag(y) - y yᵀ applied to dy.
    """

    @staticmethod
    def forward(ctx, x, axis=-1):  # x: (..., n)
        x_last = _to_last(x, axis)
        y = kernel("softmax_forward", x_last)(x_last)  # y: (..., n)
        ctx.save(y, axis)
        return _from_last(y, axis)

    @staticmethod
    def backward(ctx, grad):
        y, axis = ctx.saved
        g = _to_last(grad, axis)
        return _from_last(kernel("softmax_backward", g, y)(g, y), axis)


class LogSoftmax(Function):
    """y_i = x_i - log Σ_j exp(x_j)  (computed as (x_i - m) - log Σ_j exp(x_j - m), m = max x).

    Backward: dx = dy - softmax(x) Σ_j dy_j.
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        from minitx.backends import numpy_ref

        y = numpy_ref.log_softmax_forward(_to_last(x, axis))
        ctx.save(y, axis)
        return _from_last(y, axis)

    @staticmethod
    def backward(ctx, grad):
        from minitx.backends import numpy_ref

        y, axis = ctx.saved
        return _from_last(numpy_ref.log_softmax_backward(_to_last(grad, axis), y), axis)


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
    Srivastava et al., 2014. Backward: dx = dy · m / (1 - p)."""

    @staticmethod
    def forward(ctx, x, p, generator):
        keep = generator.random(x.shape) >= p
        scale = np.asarray(1.0 / (1.0 - p), dtype=x.dtype)
        mask = keep.astype(x.dtype) * scale
        ctx.save(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved
        return grad * mask


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

    Targets equal to ``ignore_index`` contribute nothing; "mean" divides by the number of kept targets.
    """

    @staticmethod
    def forward(ctx, logits, target, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        from minitx.backends import numpy_ref

        n, c = logits.shape
        keep = target != ignore_index
        safe_target = np.where(keep, target, 0)
        if keep.any() and (safe_target.min() < 0 or safe_target.max() >= c):
            raise IndexError(f"cross_entropy: targets must be in [0, {c}) or ignore_index={ignore_index}")
        logp = numpy_ref.log_softmax_forward(logits)
        q = np.full((n, c), label_smoothing / c, dtype=logits.dtype)
        q[np.arange(n), safe_target] += 1.0 - label_smoothing
        q *= keep[:, None]
        losses = -(q * logp).sum(axis=1)
        count = max(int(keep.sum()), 1) if reduction == "mean" else 1
        ctx.save(logp, q, reduction, count)
        if reduction == "none":
            return losses
        total = losses.sum()
        return np.asarray(total / count if reduction == "mean" else total, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        logp, q, reduction, count = ctx.saved
        keep = q.sum(axis=1, keepdims=True) > 0
        dlogits = (np.exp(logp) * keep - q)
        scale = grad[:, None] if reduction == "none" else grad / count
        return (dlogits * scale).astype(logp.dtype, copy=False), None
