"""``minitx.kernels``: the C++ kernels (``minitx._C``, pybind11), one function per kernel.

Every function takes float32, C-contiguous ndarrays and checks them strictly: a wrong dtype, layout,
rank or shape raises ``ValueError`` naming the function and the shapes (no silent copies). Outputs are
new arrays. Each has a twin with the same signature in ``minitx.reference`` (NumPy).

Matmul (the ladder in csrc/matmul/, v0 naive … v4 threaded; the default is the fastest, v4):
    matmul(a, b, version=4)       (..., M, K) @ (..., K, N), batch axes broadcast
    matmul_tn(a, b, version=4)    Aᵀ B, a (..., K, M)   — no transpose is materialised
    matmul_nt(a, b, version=4)    A Bᵀ, b (..., N, K)
    matmul_cffi(a, b)             2-D matmul through the plain C ABI entry (cffi), for overhead comparisons
    Products with M <= 16 rows (a decoder step with a KV cache: x @ Wᵀ for one token, or one per sequence)
    take the skinny path of v4 (csrc/matmul/skinny.cpp): the weights are read once, in place, not packed.
    It serves matmul (B (K, N) row-major), matmul_nt (a Linear weight (N, K)) and matmul_tn, batched or not.
Fused row kernels (csrc/fused/):
    softmax_forward(x), softmax_backward(dy, y)
    layer_norm_forward(x, weight, bias, eps=1e-5) -> (y, mean, rstd); layer_norm_backward(dy, x, weight, mean, rstd)
        -> (dx, dweight, dbias)
    gelu_forward(x, approximate="none"|"tanh"), gelu_backward(dy, x, approximate)
Flash attention (csrc/attention/): q (B,H,Lq,D), k (B,H,Lk,D), v (B,H,Lk,Dv)
    attention_forward(q, k, v, mask=None, causal=False, scale=None, dropout_p=0.0, dropout_seed=0) -> (out, lse)
    attention_backward(dout, q, k, v, out, lse, mask=None, causal=False, scale=None, dropout_p=0.0,
                       dropout_seed=0) -> (dq, dk, dv)
    mask: bool (True = attend) or float32 additive (-inf = blocked), broadcastable to (B,H,Lq,Lk) (padding:
    (B,1,1,Lk)); the rule is minitx/masks.py. A fully masked row gives out = 0, lse = -inf and no gradient;
    a NaN score gives a NaN row.
    dropout_p in [0, 1): dropout on P with the mask hashed from (dropout_seed, position), regenerated in the
    backward (numpy_ref.attention_dropout_scale).
    A decoding step (Lq <= 4, no dropout) runs csrc/attention/decode.cpp and reads k and v in place when each
    head's rows are contiguous (a KV cache's prefix, a broadcast); other strided k/v are copied first.
Cross-entropy (csrc/loss/cross_entropy.cpp): logits (N, C) float32, target (N,) int64 (classes in [0, C) or
ignore_index), label_smoothing in [0, 1]
    cross_entropy_forward(logits, target, ignore_index=-100, label_smoothing=0.0) -> (loss (N,), lse (N,) float64)
    cross_entropy_backward(dloss, logits, lse, target, ignore_index=-100, label_smoothing=0.0, out=None) -> dlogits (N, C)
        (written into ``out`` when given; ``out`` may be ``logits`` itself)
    The forward never writes the (N, C) log-probabilities; the backward recomputes softmax from logits and lse.
    Ignored rows: loss 0, lse 0, gradient 0, their logits unread.
Optimizer (csrc/optim/adamw.cpp), in place, nothing returned:
    adamw_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
               decoupled_weight_decay=True)
    param, exp_avg, exp_avg_sq (and max_exp_avg_sq, or None without amsgrad) are updated in place: they must be
    writeable; decoupled_weight_decay=False is Adam's L2 form.
Runtime:
    info() -> {"isa", "isa_available", "threads", "compiler", "matmul_versions", "matmul_default_version"}
    set_isa("scalar"|"avx2"|"avx512") (only ISAs the CPU has), set_num_threads(n), get_num_threads()
    The ISA is chosen at import from cpuid; MINITX_ISA lowers it, MINITX_NUM_THREADS sets the threads (default 2).
    After a parallel call the pool's worker spins MINITX_SPIN_US microseconds (default 3000) for the next one
    before it sleeps: lower it on a machine shared with other busy processes, 0 sleeps at once.
Output cache (csrc/output_cache.h): outputs of 1 MiB or more live in blocks that go back to a cache when the
array (and every view of it) is freed, and the next output of the same size reuses one, instead of new pages
that the OS must zero-fill on first touch (~10-14 ms for 128 MiB on a 2-core VM: as long as a softmax over
them). Results are identical with the cache off.
    output_cache_info() -> {"limit_bytes", "cached_bytes", "cached_blocks", "hits", "misses", "min_cached_output_bytes"}
    set_output_cache_limit(nbytes) (0 turns it off and frees every block), empty_output_cache()
    The limit starts at MINITX_OUTPUT_CACHE_MB (default 256 MiB).
"""
import numpy as np

from minitx._C import (  # noqa: F401
    adamw_step,
    attention_backward,
    attention_forward,
    cross_entropy_backward,
    cross_entropy_forward,
    empty_output_cache,
    gelu_backward,
    gelu_forward,
    get_num_threads,
    info,
    layer_norm_backward,
    layer_norm_forward,
    matmul,
    matmul_nt,
    matmul_tn,
    output_cache_info,
    set_isa,
    set_num_threads,
    set_output_cache_limit,
    softmax_backward,
    softmax_forward,
)

_cffi = None
_F32 = np.dtype(np.float32)


def _cffi_lib():
    """(ffi, matmul entry, float[] ctype) for the C ABI entry point ``minitx_matmul_f32`` exported by the same
    shared object."""
    global _cffi
    if _cffi is None:
        import cffi

        from minitx import _C

        ffi = cffi.FFI()
        ffi.cdef("int minitx_matmul_f32(const float *a, const float *b, float *c, int64_t m, int64_t k, int64_t n);")
        lib = ffi.dlopen(_C.__file__)
        _cffi = (ffi, lib.minitx_matmul_f32, ffi.typeof("float[]"))
    return _cffi


def _cffi_ok(x):
    """True for a 2-D C-contiguous float32 ndarray (the identity test on the dtype is the fast path)."""
    return (type(x) is np.ndarray or isinstance(x, np.ndarray)) and x.ndim == 2 and x.flags.c_contiguous and (
        x.dtype is _F32 or x.dtype == _F32)


def matmul_cffi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A B for 2-D float32 C-contiguous a (M, K), b (K, N) through cffi (the default rung).

    Per-call cost is dominated by Python, not C: each ``ffi.from_buffer`` (a pointer into the array, no copy;
    it keeps the array alive while the cdata lives) is ~0.2-0.5 µs, and ``np.empty`` about as much. It is
    still faster than ``a.ctypes.data`` (which builds a ctypes object, ~1-3 µs). See
    benchmarks/bench_binding_overhead.py."""
    ffi, fn, floats = _cffi or _cffi_lib()
    if not (_cffi_ok(a) and _cffi_ok(b)):
        for name, x in (("a", a), ("b", b)):
            if not (isinstance(x, np.ndarray) and _cffi_ok(x)):
                raise ValueError(f"matmul_cffi: {name} must be a 2-D C-contiguous float32 ndarray, got "
                                 f"{getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}")
    m, k = a.shape
    k2, n = b.shape
    if k != k2:
        raise ValueError(f"matmul_cffi: inner dimensions differ: a is {a.shape}, b is {b.shape}")
    c = np.empty((m, n), _F32)
    fn(ffi.from_buffer(floats, a), ffi.from_buffer(floats, b), ffi.from_buffer(floats, c), m, k, n)
    return c


__all__ = [
    "matmul", "matmul_tn", "matmul_nt", "matmul_cffi", "softmax_forward", "softmax_backward", "layer_norm_forward",
    "layer_norm_backward", "gelu_forward", "gelu_backward", "attention_forward", "attention_backward",
    "cross_entropy_forward", "cross_entropy_backward", "adamw_step", "info",
    "set_isa", "set_num_threads", "get_num_threads",
]
