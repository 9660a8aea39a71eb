"""Linear + cross-entropy, chunked over the rows, so the (N, V) logits are never all alive at once.

A language model's last step is loss = CE(h Wᵀ, t) with h (N, H) the hidden states of N = B·L tokens and
W (V, H) the (tied) embedding matrix. Done as two ops, autograd keeps the (N, V) logits for the backward:
for GPT-2 small at B = 8, L = 1024 that is 8192 × 50257 floats = 1.6 GB, more than the rest of the step.
Taking the rows ``chunk`` at a time (the idea of "fused linear cross-entropy", e.g. Liger-Kernel, Hsu et
al., 2024; Apple's "Cut Your Losses", Wijmans et al., 2024) bounds that to (chunk, V). The loss is the last
op of a training step, so (as Liger-Kernel does) the forward also computes the gradients while each chunk's
logits are at hand, for dL/dloss = 1:

    z_c = h_c Wᵀ                                   (chunk, V)
    loss = Σ_c Σ_n CE(z_c,n, t_n) / count
    dz_c = (softmax(z_c) - onehot(t_c)) / count    the cross-entropy backward
    dh_c = dz_c W,   dW = Σ_c dz_cᵀ h_c

and the backward only scales them by the incoming dL/dloss: three matrix products per chunk in all, where
keeping nothing but the log-sum-exp would need a fourth (recomputing z_c in the backward). Without grad mode
(evaluation) the forward computes the loss alone. Same value as the two ops (up to the order of the float
sums).
"""
import numpy as np

from minitx import distributed
from minitx.autograd import Function, is_grad_enabled
from minitx.backends import kernel


def chunk_logits(hidden: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return kernel("matmul_nt", hidden, weight)(hidden, weight)            # (c, H) (V, H)ᵀ -> (c, V)


class LinearCrossEntropy(Function):
    """mean over the kept rows n of CE(hidden_n weightᵀ, target_n); rows with ``ignore_index`` count nothing."""

    @staticmethod
    def forward(ctx, hidden, weight, target, chunk=1024, ignore_index=-100):  # (N, H), (V, H), (N,)
        # the number of kept targets; under data parallelism, over every rank (minitx/distributed.py)
        count = distributed.mean_denominator(int((target != ignore_index).sum()))
        wants_grad = is_grad_enabled() and any(ctx.needs_input_grad[:2])
        if wants_grad:
            dhidden, dweight = np.empty_like(hidden), np.zeros_like(weight)
            with np.errstate(invalid="ignore", divide="ignore"):
                dloss = np.full(min(chunk, hidden.shape[0]), np.divide(1.0, count), dtype=hidden.dtype)
        total = np.float64(0.0)
        for start in range(0, hidden.shape[0], chunk):
            rows = slice(start, start + chunk)
            h = hidden[rows]                                                 # (c, H)
            z = chunk_logits(h, weight)                                      # (c, V)
            losses, lse = kernel("cross_entropy_forward", z)(z, target[rows], ignore_index, 0.0)
            total += losses.sum(dtype=np.float64)
            if wants_grad:
                d = dloss[:len(z)]
                # dz in place of z (z is not needed again): one (c, V) buffer per chunk, not two
                dz = kernel("cross_entropy_backward", d, z)(d, z, lse, target[rows], ignore_index, 0.0, out=z)
                dhidden[rows] = kernel("matmul", dz, weight)(dz, weight)     # (c, V) (V, H) -> (c, H)
                dweight += kernel("matmul_tn", dz, h)(dz, h)                 # (c, V)ᵀ (c, H) -> (V, H)
                del dz
            del z  # freed before the next chunk's logits are allocated: the C++ output cache hands the block back
        if wants_grad:
            ctx.save(dhidden, dweight)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(total / count, dtype=hidden.dtype)

    @staticmethod
    def backward(ctx, grad):
        dhidden, dweight = ctx.saved                                         # for dL/dloss = 1
        if grad == 1:
            return dhidden, dweight, None
        return dhidden * grad, dweight * grad, None


def linear_cross_entropy(hidden, weight, target, chunk: int = 1024, ignore_index: int = -100):
    """CE(hidden weightᵀ, target), mean over the kept rows, never holding more than (chunk, V) logits.
    hidden: Tensor (N, H); weight: Tensor (V, H); target: int array (N,)."""
    return LinearCrossEntropy.apply(hidden, weight, np.asarray(target, dtype=np.int64), chunk=chunk,
                                    ignore_index=ignore_index)
