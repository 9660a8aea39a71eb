"""``minitx.nn.functional`` (import as F): the neural-network functions on Tensors.

Each is a thin wrapper that builds the Function from ``minitx/ops``; read those files for the maths.
"""
import numpy as np

from minitx import distributed
from minitx.ops import linear as linear_ops, nn_ops
from minitx.ops.attention import scaled_dot_product_attention  # noqa: F401 - part of the F namespace
from minitx.tensor import Tensor, data_of


def relu(x: Tensor) -> Tensor:
    return x.relu()


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU(x) = x Φ(x); ``approximate="tanh"`` for GPT-2's tanh form."""
    return x.gelu(approximate)


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    return x.log_softmax(dim)


def linear(x: Tensor, weight: Tensor, bias: Tensor = None) -> Tensor:
    """y = x Wᵀ + b with W: (out_features, in_features), as in torch.nn.functional.linear."""
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has shape {x.shape} but weight has shape {weight.shape} "
                         "(weight must be (out_features, in_features) with in_features = the input's last axis)")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},) "
                         f"for weight {weight.shape}")
    return linear_ops.Linear.apply(x, weight, bias)


def layer_norm(x: Tensor, normalized_shape, weight: Tensor = None, bias: Tensor = None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last axis (``normalized_shape`` must be that axis's size)."""
    if tuple(np.atleast_1d(normalized_shape)) != x.shape[-1:]:
        raise ValueError(f"layer_norm: normalized_shape {normalized_shape} does not match the last axis of input {x.shape}")
    return nn_ops.LayerNorm.apply(x, weight, bias, eps=eps)


dropout = nn_ops.dropout


def embedding(ids, weight: Tensor, padding_idx: int = None) -> Tensor:
    """Rows of ``weight`` picked by integer ``ids`` (array or Tensor): (...,) -> (..., D)."""
    ids = data_of(ids)
    return nn_ops.Embedding.apply(weight, ids=ids, padding_idx=padding_idx)


def cross_entropy(logits: Tensor, target, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits (N, C) [or (N, C, d...) with class axis 1, like torch] vs integer targets."""
    target = data_of(target)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if logits.ndim > 2:  # (N, C, d1, ...) -> (N*d1*..., C)
        moved = logits.permute(0, *range(2, logits.ndim), 1)
        flat = moved.reshape(-1, logits.shape[1])
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(f"cross_entropy: target shape {target.shape} does not match logits {logits.shape}")
        out = nn_ops.CrossEntropy.apply(flat, target=target.reshape(-1), ignore_index=ignore_index,
                                        label_smoothing=label_smoothing, reduction=reduction)
        return out.reshape(target.shape) if reduction == "none" else out
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"cross_entropy: expected logits (N, C) and target (N,), got {logits.shape} and {target.shape}")
    return nn_ops.CrossEntropy.apply(logits, target=target, ignore_index=ignore_index,
                                     label_smoothing=label_smoothing, reduction=reduction)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)²) (or sum / none)."""
    target = target if isinstance(target, Tensor) else input._lift(target)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} differ")
    sq = (input - target) ** 2
    if reduction == "mean":  # the count over every rank under data parallelism (minitx/distributed.py)
        return sq.sum() / distributed.mean_denominator(sq.numel())
    if reduction == "sum":
        return sq.sum()
    if reduction == "none":
        return sq
    raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
