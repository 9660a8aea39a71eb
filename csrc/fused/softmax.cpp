// Fused softmax over the last axis, forward and backward, one row at a time.
//   forward:  y_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j   (the max keeps exp finite)
//   backward: dx = y ∘ (dy - sum_j dy_j y_j)   (the Jacobian diag(y) - y yᵀ applied to dy)
// Forward: max, then exp + sum (writing y), then y *= 1/sum; backward: a dot product, then one
// elementwise pass. A row stays in L1/L2 between passes, so memory sees one read and one write per
// element; NumPy's version makes ~6 passes over memory. All passes are AVX2 (simd.h) with scalar twins.
// The forward is bound by the polynomial exp as much as by memory; the backward must read two arrays and
// write one, so NumPy's version moves only ~3× as many bytes.
// Edge values as torch: a NaN or +inf in a row, or a row of only -inf, makes the whole row NaN (the max
// and the exp propagate NaN, and inf - inf = NaN); the backward lets NaN flow through its dot product.
// Speed: benchmarks/results/fused.json.
// Reference: minitx/backends/numpy_ref.py::softmax_forward / softmax_backward
#include <algorithm>

#include "fused/fused.h"
#include "simd.h"
#include "simd_avx2.h"

namespace minitx {

// dx = y ∘ (dy - dot)
__attribute__((target("avx2,fma"))) static void softmax_grad_row_avx2(const float* dy, const float* y, float dot,
                                                                      float* dx, Index n) {
    const __m256 vd = _mm256_set1_ps(dot);
    Index i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), _mm256_sub_ps(_mm256_loadu_ps(dy + i), vd)));
    for (; i < n; ++i) dx[i] = y[i] * (dy[i] - dot);
}

void softmax_forward(const float* x, float* y, Index rows, Index n) {
    for_rows(rows, n, [&](Index r0, Index r1) {
        for (Index r = r0; r < r1; ++r) {
            const float* xr = x + r * n;
            float* yr = y + r * n;
            const float m = simd::max(xr, n);
            const float s = simd::exp_shift_sum(xr, -m, yr, n);
            simd::scale(yr, 1.f / s, n);
        }
    });
}

void softmax_backward(const float* dy, const float* y, float* dx, Index rows, Index n) {
    const bool avx2 = current_isa() != Isa::Scalar;
    for_rows(rows, n, [&](Index r0, Index r1) {
        for (Index r = r0; r < r1; ++r) {
            const float *g = dy + r * n, *yr = y + r * n;
            float* out = dx + r * n;
            const float dot = simd::dot(g, yr, n);
            if (avx2) {
                softmax_grad_row_avx2(g, yr, dot, out, n);
                continue;
            }
            for (Index i = 0; i < n; ++i) out[i] = yr[i] * (g[i] - dot);
        }
    });
}

}  // namespace minitx
