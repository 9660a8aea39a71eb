// Flash attention forward: out = softmax(q kᵀ · scale + bias) v without forming the Lq×Lk matrix.
// For each query row, K/V are streamed in tiles of kTile keys with an online softmax: a running max m,
// running sum l and unnormalised accumulator acc are rescaled by exp(m_old - m_new) whenever a tile
// raises the max (Milakov & Gimelshein, 2018; Dao et al., 2022, Alg. 1). The only extra memory is one
// tile of scores; the output is acc / l and lse = m + log l is kept for the backward pass.
// A row that sees no key (all -inf) gets out = 0 and lse = -inf, never NaN. Rows are independent, so
// blocks of rows are spread over threads. Causal rows stop at their last visible key.
// Measured: see benchmarks/results/attention.json.
// Reference: minitx/backends/numpy_ref.py::attention_forward
#include <algorithm>
#include <vector>

#include "attention/attention.h"
#include "simd.h"

namespace minitx {

static constexpr Index kTile = 64;
static constexpr Index kRowsPerTask = 16;

static void forward_row(const AttnShape& s, const float* qi, const float* kh, const float* vh, const AttnMask& mask,
                        Index mask_row, Index n_keys, float* scores, float* acc, float* out_i, float* lse_i) {
    float m = -INFINITY, l = 0.f;
    std::fill(acc, acc + s.Dv, 0.f);
    for (Index j0 = 0; j0 < n_keys; j0 += kTile) {
        const Index n = std::min(kTile, n_keys - j0);
        for (Index t = 0; t < n; ++t) {
            float sc = simd::dot(qi, kh + (j0 + t) * s.D, s.D) * s.scale;
            if (mask.any()) sc += mask.bias(mask_row, j0 + t);
            scores[t] = sc;
        }
        const float tile_max = simd::max(scores, n);
        if (tile_max == -INFINITY) continue;  // every key of this tile is masked
        const float m_new = std::max(m, tile_max);
        const float correction = m == -INFINITY ? 0.f : std::exp(m - m_new);
        if (correction != 1.f) {
            l *= correction;
            simd::scale(acc, correction, s.Dv);
        }
        l += simd::exp_shift_sum(scores, -m_new, scores, n);  // scores -> p = exp(score - m_new)
        for (Index t = 0; t < n; ++t)
            if (scores[t] != 0.f) simd::axpy(acc, scores[t], vh + (j0 + t) * s.Dv, s.Dv);
        m = m_new;
    }
    if (l == 0.f) {
        std::fill(out_i, out_i + s.Dv, 0.f);
        *lse_i = -INFINITY;
        return;
    }
    const float inv = 1.f / l;
    for (Index d = 0; d < s.Dv; ++d) out_i[d] = acc[d] * inv;
    *lse_i = m + std::log(l);
}

void flash_attention_forward(const AttnShape& s, const float* q, const float* k, const float* v, const AttnMask& mask,
                             float* out, float* lse) {
    const Index row_blocks = (s.Lq + kRowsPerTask - 1) / kRowsPerTask;
    const double work = double(s.B) * s.H * s.Lq * s.Lk * (s.D + s.Dv);
    parallel_for(s.B * s.H * row_blocks, [&](Index task) {
        const Index bh = task / row_blocks, i0 = (task % row_blocks) * kRowsPerTask;
        const Index b = bh / s.H, h = bh % s.H;
        const float* kh = k + bh * s.Lk * s.D;
        const float* vh = v + bh * s.Lk * s.Dv;
        std::vector<float> scores(kTile), acc(s.Dv);
        for (Index i = i0; i < std::min(s.Lq, i0 + kRowsPerTask); ++i) {
            const Index row = bh * s.Lq + i;
            forward_row(s, q + row * s.D, kh, vh, mask, mask.row(b, h, i), s.keys_visible(i), scores.data(),
                        acc.data(), out + row * s.Dv, lse + row);
        }
    }, work < 1e6 ? 1 : 0);
}

}  // namespace minitx
