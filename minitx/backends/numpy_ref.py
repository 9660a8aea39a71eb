"""The reference kernels: the maths of every C++ kernel, written plainly in NumPy.

Each function here has a twin with the same name and signature in ``minitx.kernels`` (the C++
extension). Tests compare the two; the autograd ops call whichever backend is active
(``minitx.set_backend``). Arrays are float32 or float64; reductions run over the last axis.
"""
import math

import numpy as np

from minitx.masks import attention_bias
from minitx.ops.broadcast import unbroadcast

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ---------------------------------------------------------------- matmul
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C[..., i, j] = sum_k A[..., i, k] B[..., k, j]   (batch axes broadcast)."""
    return np.matmul(a, b)


def matmul_tn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = Aᵀ B with A (..., K, M), B (..., K, N): the product behind dB = Aᵀ dC."""
    return np.matmul(np.swapaxes(a, -1, -2), b)


def matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A Bᵀ with A (..., M, K), B (..., N, K): the product behind dA = dC Bᵀ."""
    return np.matmul(a, np.swapaxes(b, -1, -2))


# ---------------------------------------------------------------- softmax
def softmax_forward(x: np.ndarray) -> np.ndarray:
    """y_i = exp(x_i - max x) / sum_j exp(x_j - max x) over the last axis (the max keeps exp finite)."""
    # BEGIN SOLUTION hint="softmax over the last axis, stable: subtract the row max (keepdims=True) before np.exp, divide by the row sum"
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
    # END SOLUTION


def softmax_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dx = y * (dy - sum_j dy_j y_j): the Jacobian diag(y) - y yᵀ applied to dy."""
    # BEGIN SOLUTION hint="dx = y * (dy - sum_j dy_j y_j), the sum over the last axis with keepdims=True"
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    # END SOLUTION


def log_softmax_forward(x: np.ndarray) -> np.ndarray:
    """log_softmax(x)_i = x_i - logsumexp(x) = (x_i - m) - log sum_j exp(x_j - m),  m = max x."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dx = dy - softmax(x) * sum_j dy_j, with softmax(x) = exp(y)."""
    return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------- cross-entropy (log-softmax + NLL)
def cross_entropy_forward(logits, target, ignore_index=-100, label_smoothing=0.0):
    """Per-row losses (N,) of logits (N, C) against integer targets (N,), and lse (N,) = logsumexp of each row:

        loss_n = (1 - ε) (lse_n - x_{n, t_n}) + ε (lse_n - mean_c x_{n, c})
               = (1 - ε) (-log p_{n, t_n}) + ε · mean_c (-log p_{n, c})    (label smoothing ε, Szegedy et al. 2016)

    The (N, C) log-probabilities are not returned: the backward rebuilds softmax from the logits and lse, so the
    saved state is N numbers, not N·C (250 MB for a BERT batch of 2048 tokens × 30522 classes). lse is float64
    (see cross_entropy_backward). A row whose target is ``ignore_index`` has loss exactly 0 and lse 0, whatever
    its logits hold (NaN, -inf). The smoothing term is only formed when ε > 0, so a -inf logit on another class
    costs nothing without it.
    """
    n = logits.shape[0]
    keep = target != ignore_index
    m = logits.max(axis=-1, keepdims=True)                  # the max keeps exp finite
    shifted = logits - m
    log_sum = np.log(np.exp(shifted).sum(axis=-1))
    nll = log_sum - shifted[np.arange(n), np.where(keep, target, 0)]
    loss = nll if label_smoothing == 0 else (1.0 - label_smoothing) * nll + label_smoothing * (
        log_sum - shifted.mean(axis=-1))
    lse = m[:, 0].astype(np.float64) + log_sum
    return np.where(keep, loss, 0.0).astype(logits.dtype, copy=False), np.where(keep, lse, 0.0)


def cross_entropy_backward(dloss, logits, lse, target, ignore_index=-100, label_smoothing=0.0, out=None):
    """dlogits_n = dloss_n (softmax(x_n) - q_n),  q_n = (1 - ε) onehot(t_n) + ε / C;  0 on ignored rows.

    softmax(x_n) = exp(x_n - lse_n), recomputed (flash-attention style). x - lse is formed in float64, then
    rounded: log p keeps float32's precision even for logits far from 0 (float32 lse would cost ulp(lse)).
    ``out``: an array of logits' shape to write dlogits into (it may be ``logits`` itself); returned.
    """
    if out is not None:
        if out.shape != logits.shape:
            raise ValueError(f"cross_entropy_backward: out and logits must have the same shape, out is {out.shape}, "
                             f"logits is {logits.shape}")
        out[...] = cross_entropy_backward(dloss, logits, lse, target, ignore_index, label_smoothing)
        return out
    n, c = logits.shape
    keep = target != ignore_index
    p = np.exp((logits - lse[:, None]).astype(logits.dtype))
    dlogits = (p - label_smoothing / c) * dloss[:, None]
    rows = np.flatnonzero(keep)
    dlogits[rows, target[rows]] -= (1.0 - label_smoothing) * dloss[rows]
    return np.where(keep[:, None], dlogits, 0.0).astype(logits.dtype, copy=False)


# ---------------------------------------------------------------- Adam / AdamW (Kingma & Ba; Loshchilov & Hutter)
def adamw_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
               decoupled_weight_decay=True):
    """One Adam step at step t (>= 1), in place on param (θ), exp_avg (m), exp_avg_sq (v) and, for amsgrad,
    max_exp_avg_sq (else None):

        θ <- θ (1 - η λ)          if decoupled_weight_decay (AdamW);  else g <- g + λ θ (Adam's L2 term)
        m <- m + (g - m)(1 - β1)  (= β1 m + (1 - β1) g, torch's lerp form),   v <- β2 v + (1 - β2) g²
        v̂ = v, or v_max = max(v_max, v) with amsgrad
        θ <- θ - η / (1 - β1^t) · m / (sqrt(v̂) / sqrt(1 - β2^t) + ε)

    The order of operations is torch's, so 10 steps match torch to float32 rounding. Python floats act on
    float32 arrays as float32 constants.
    """
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= param.dtype.type(1 - lr * weight_decay)
        else:
            grad = grad + weight_decay * param
    exp_avg += (grad - exp_avg) * (1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    v = exp_avg_sq
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    denom = np.sqrt(v) / math.sqrt(1 - beta2 ** step) + eps
    param -= (lr / (1 - beta1 ** step) * (exp_avg / denom)).astype(param.dtype, copy=False)


# ---------------------------------------------------------------- layer norm (Ba et al., 2016)
def layer_norm_forward(x, weight, bias, eps=1e-5):
    """y = (x - mean) * rstd * weight + bias over the last axis, rstd = 1/sqrt(var + eps).

    Returns (y, mean, rstd); mean and rstd have shape x.shape[:-1] and are what backward needs.
    """
    # BEGIN SOLUTION hint="over the last axis: mean, var = mean((x - mean)^2) (biased), rstd = 1/sqrt(var + eps), y = (x - mean) * rstd * weight + bias; return (y, mean, rstd) in x.dtype, mean and rstd of shape x.shape[:-1]"
    mean = x.mean(axis=-1)
    centered = x - mean[..., None]
    var = (centered * centered).mean(axis=-1)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = centered * rstd[..., None]
    y = xhat * weight + bias if weight is not None else xhat
    return y.astype(x.dtype, copy=False), mean.astype(x.dtype), rstd.astype(x.dtype)
    # END SOLUTION


def layer_norm_backward(dy, x, weight, mean, rstd):
    """With xhat = (x - mean) * rstd and g = dy * weight (n = size of the last axis):

        dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
        dweight = sum over rows of dy * xhat,   dbias = sum over rows of dy
    """
    # BEGIN SOLUTION hint="xhat = (x - mean) * rstd, g = dy * weight; dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (means over the last axis); dweight = sum of dy * xhat and dbias = sum of dy over every axis but the last"
    xhat = (x - mean[..., None]) * rstd[..., None]
    g = dy * weight if weight is not None else dy
    dx = rstd[..., None] * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    rows = tuple(range(x.ndim - 1))
    dweight = (dy * xhat).sum(axis=rows) if weight is not None else None
    dbias = dy.sum(axis=rows) if weight is not None else None
    return dx.astype(x.dtype, copy=False), dweight, dbias
    # END SOLUTION


# ---------------------------------------------------------------- GELU (Hendrycks & Gimpel, 2016)
def erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorised (NumPy has none).

    erfc(z) ≈ t exp(-z² + P(t)), t = 1/(1 + z/2), a Chebyshev fit with fractional error < 1.2e-7
    (Numerical Recipes in C, 2nd ed., §6.2, ``erfcc``); erf(x) = sign(x) (1 - erfc(|x|)).
    """
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.sign(x) * (1.0 - erfc)


def gelu_forward(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """GELU(x) = x Φ(x).

    "none": Φ(x) = (1 + erf(x/√2)) / 2 (exact; BERT).
    "tanh": Φ(x) ≈ (1 + tanh(√(2/π)(x + 0.044715 x³))) / 2 (GPT-2's "gelu_new").
    """
    if approximate == "tanh":
        inner = SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)
        return (0.5 * x * (1.0 + np.tanh(inner))).astype(x.dtype, copy=False)
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return (0.5 * x * (1.0 + erf(x * INV_SQRT_2))).astype(x.dtype, copy=False)


def gelu_backward(dy: np.ndarray, x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """d/dx [x Φ(x)] = Φ(x) + x φ(x), with φ the standard normal density (exact form);
    tanh form: 0.5(1 + th) + 0.5 x (1 - th²) √(2/π)(1 + 3·0.044715 x²), th = tanh(inner)."""
    if approximate == "tanh":
        inner = SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)
        th = np.tanh(inner)
        d = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x)
    elif approximate == "none":
        cdf = 0.5 * (1.0 + erf(x * INV_SQRT_2))
        pdf = INV_SQRT_2PI * np.exp(-0.5 * x * x)
        d = cdf + x * pdf
    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return (dy * d).astype(x.dtype, copy=False)


# ---------------------------------------------------------------- attention (Vaswani et al., 2017, §3.2.1)
def _masked_scores(q, k, mask, causal, scale):
    """S = where(keep, q kᵀ · scale + additive, finfo.min) and the rows that see a key (the mask rule:
    minitx/masks.py). A blocked score is replaced, so a NaN behind a mask stays hidden (minitx's rule; torch
    2.13 adds -inf and lets it through)."""
    keep, additive, visible = attention_bias(mask, causal, q.shape[-2], k.shape[-2], q.dtype)
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    if additive is not None:
        scores = scores + additive
    return np.where(keep, scores, np.finfo(q.dtype).min), visible


def attention_dropout_scale(seed: int, shape: tuple, p: float, dtype) -> np.ndarray:
    """Z, the attention-dropout factors of a (..., Lq, Lk) probability matrix: 1/(1-p) where kept, 0 where dropped
    (inverted dropout; Srivastava et al., 2014), so dropped P = P ∘ Z.

    The mask comes from a counter-based hash instead of a stream of random numbers (as FlashAttention draws it
    with Philox; Salmon et al., 2011): element n of the matrix (its C-order position) is kept iff

        splitmix64(seed + (n + 1) · 0x9E3779B97F4A7C15) >> 40  >=  floor(p · 2²⁴)

    i.e. a 24-bit uniform integer is at least p's share of 2²⁴. The same (seed, n) always gives the same
    decision, so the fused kernel regenerates the mask tile by tile in its backward instead of storing it;
    ``csrc/attention/attention.h::AttnDropout`` is the C++ twin. The seed is drawn per call from minitx's
    generator (``minitx.ops.attention.draw_dropout_seed``).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"attention dropout: p must be in [0, 1], got {p}")
    if p == 1.0:  # nothing kept (1/(1-p) would divide by zero)
        return np.zeros(shape, dtype)
    n = np.arange(1, math.prod(shape) + 1, dtype=np.uint64).reshape(shape)
    keep = (_splitmix64(np.uint64(seed) + n * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) >= int(p * 2 ** 24)
    return np.where(keep, np.asarray(1.0 / (1.0 - p), dtype), np.asarray(0, dtype))


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The finaliser of splitmix64 (Steele et al., 2014): a bijection of uint64 that mixes every input bit into
    every output bit (array arithmetic wraps modulo 2⁶⁴)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def attention_forward(q, k, v, mask=None, causal=False, scale=None, dropout_p=0.0, dropout_seed=0):
    """out = dropout(softmax(q kᵀ * scale + bias)) v, scale = 1/√D by default.

    q: (B, H, Lq, D), k and v: (B, H, Lk, D); mask: canonical (``minitx.masks.canonical_mask``): boolean
    (True = keep) or additive with -inf where blocked, broadcastable to (B, H, Lq, Lk). ``dropout_p`` > 0
    multiplies P by ``attention_dropout_scale(dropout_seed, ...)``. Returns (out (B, H, Lq, D), lse (B, H, Lq))
    where lse = logsumexp of the scores (before dropout): what the backward pass needs to recompute the
    probabilities. A fully masked row gives out = 0 and lse = -inf; a NaN score gives a NaN row.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores, visible = _masked_scores(q, k, mask, causal, scale)
    row_max = scores.max(axis=-1, keepdims=True, initial=np.finfo(q.dtype).min)  # initial: Lk may be 0
    e = np.exp(scores - row_max)
    denom = e.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(visible, e / denom, 0.0)
        lse = np.where(visible, np.log(denom) + row_max, -np.inf)[..., 0]
    if dropout_p > 0:
        p = p * attention_dropout_scale(dropout_seed, p.shape, dropout_p, p.dtype)
    out = np.matmul(p, v)
    return out.astype(q.dtype, copy=False), lse.astype(q.dtype, copy=False)


def attention_backward(dout, q, k, v, out, lse, mask=None, causal=False, scale=None, dropout_p=0.0, dropout_seed=0):
    """Gradients of attention from the saved logsumexp (P is recomputed, never stored; so is the dropout
    mask Z, from its seed):

        P = exp(S - lse),  dV = (P ∘ Z)ᵀ dO,  dP = (dO Vᵀ) ∘ Z,
        dS = P ∘ (dP - rowsum(dO ∘ O)),  dQ = dS K * scale,  dK = dSᵀ Q * scale

    (rowsum(dO ∘ O) = Σ_j P_ij dP_ij still holds with dropout, since O = (P ∘ Z) V). A fully masked row
    (lse = -inf) has P = 0, so it passes no gradient.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores, _ = _masked_scores(q, k, mask, causal, scale)
    p = np.exp(scores - np.where(np.isneginf(lse), np.inf, lse)[..., None])
    dp = np.matmul(dout, np.swapaxes(v, -1, -2))
    dropped = p
    if dropout_p > 0:
        z = attention_dropout_scale(dropout_seed, p.shape, dropout_p, p.dtype)
        dropped, dp = p * z, dp * z
    dv = np.matmul(np.swapaxes(dropped, -1, -2), dout)
    delta = (dout * out).sum(axis=-1, keepdims=True)
    ds = p * (dp - delta)
    dq = np.matmul(ds, k) * scale
    dk = np.matmul(np.swapaxes(ds, -1, -2), q) * scale
    dt = q.dtype
    return (_sum_to(dq, q.shape).astype(dt, copy=False), _sum_to(dk, k.shape).astype(dt, copy=False),
            _sum_to(dv, v.shape).astype(dt, copy=False))


def _sum_to(grad, shape):
    """Sum the axes of grad that were broadcast from shape (q, k or v may have fewer batch dims than the scores)."""
    return unbroadcast(grad, shape)
