// Attention for decoding: a few queries per head (one per step with a KV cache) against all cached keys.
// The flash kernel (flash_fwd.cpp) is built for long query blocks: it packs every V tile and a 128-query
// block of Q per head, and needs K and V contiguous, so a cache's prefix (a view into a larger buffer) was
// copied every step. Here each query is one row of the same formula, read straight from the cache:
//   s_j = (scale·q) · k_j   (masked: blocked keys -> -inf, AttnMask::apply; causal: keys past keys_visible)
//   m = max_j s_j,  p_j = exp(s_j - m),  l = Σ_j p_j,  out = Σ_j p_j v_j / l,  lse = m + log l.
// Same edge values as the flash kernel: a query that sees no key gets out = 0 and lse = -inf; a NaN (or +inf)
// among its visible scores makes out and lse NaN. Heads are spread over threads when the work pays for it.
// Reference: minitx/backends/numpy_ref.py::attention_forward
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/attention.h"
#include "simd.h"

namespace minitx {

// Multiply-adds from which the heads are split over threads (waking a worker costs ~50-200 µs).
static constexpr double kParallelMacs = 1 << 18;

// One query of head (b, h): q_row (D) against the head's keys; writes out_row (Dv) and *lse_row.
static void decode_query(const AttnShape& s, const float* q_row, const float* kh, const float* vh, const AttnMask& mask,
                         Index b, Index h, Index i, float* scores, float* qs, float* out_row, float* lse_row) {
    const Index n = s.keys_visible(i), row = mask.row(b, h, i);
    for (Index d = 0; d < s.D; ++d) qs[d] = s.scale * q_row[d];
    for (Index j = 0; j < n; ++j) {
        const float x = simd::dot(qs, kh + j * s.D, s.D);
        scores[j] = mask.any() ? mask.apply(row, j, x) : x;
    }
    const float m = simd::max(scores, n);
    std::fill(out_row, out_row + s.Dv, 0.f);
    if (m == -INFINITY) {  // no key visible (n = 0 or all blocked)
        *lse_row = -INFINITY;
        return;
    }
    const float l = simd::exp_shift_sum(scores, -m, scores, n);
    for (Index j = 0; j < n; ++j) simd::axpy(out_row, scores[j], vh + j * s.Dv, s.Dv);
    simd::scale(out_row, 1.f / l, s.Dv);
    *lse_row = m + std::log(l);
}

void decode_attention_forward(const AttnShape& s, const float* q, HeadRows k, HeadRows v, const AttnMask& mask,
                              float* out, float* lse) {
    const double work = double(s.B) * s.H * s.Lq * s.Lk * (s.D + s.Dv);
    parallel_for(s.B * s.H, [&](Index bh) {
        thread_local std::vector<float> scores, qs;
        scores.resize(s.Lk);
        qs.resize(s.D);
        const Index b = bh / s.H, h = bh % s.H;
        for (Index i = 0; i < s.Lq; ++i)
            decode_query(s, q + (bh * s.Lq + i) * s.D, k.head(b, h), v.head(b, h), mask, b, h, i, scores.data(),
                         qs.data(), out + (bh * s.Lq + i) * s.Dv, lse + bh * s.Lq + i);
    }, work < kParallelMacs ? 1 : 0);
}

}  // namespace minitx
