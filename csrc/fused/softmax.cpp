// Fused softmax over the last axis, forward and backward, one row at a time.
//   forward:  y_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j   (the max keeps exp finite)
//   backward: dx = y ∘ (dy - sum_j dy_j y_j)   (the Jacobian diag(y) - y yᵀ applied to dy)
// Each row is read twice (max, then exp+sum) and written twice; NumPy's version makes ~6 passes.
// Reference: minitx/backends/numpy_ref.py::softmax_forward / softmax_backward
#include <algorithm>

#include "fused/fused.h"
#include "simd.h"

namespace minitx {

void for_rows(Index rows, Index n, const std::function<void(Index, Index)>& body) {
    constexpr Index kMinElementsPerTask = 1 << 15;
    const Index rows_per_task = std::max<Index>(1, kMinElementsPerTask / std::max<Index>(n, 1));
    const Index tasks = (rows + rows_per_task - 1) / rows_per_task;
    parallel_for(tasks, [&](Index t) {
        const Index r0 = t * rows_per_task;
        body(r0, std::min(rows, r0 + rows_per_task));
    });
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
    for_rows(rows, n, [&](Index r0, Index r1) {
        for (Index r = r0; r < r1; ++r) {
            const float* g = dy + r * n;
            const float* yr = y + r * n;
            float* out = dx + r * n;
            const float dot = simd::dot(g, yr, n);
            for (Index i = 0; i < n; ++i) out[i] = yr[i] * (g[i] - dot);
        }
    });
}

}  // namespace minitx
