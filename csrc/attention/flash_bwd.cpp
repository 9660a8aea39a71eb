// Flash attention backward: gradients from the saved lse, recomputing P tile by tile (never stored):
//   P = exp(S - lse),  dV = Pᵀ dO,  dP = dO Vᵀ,  Δ_i = Σ_d dO_id O_id,
//   dS = P ∘ (dP - Δ),  dQ = dS K · scale,  dK = dSᵀ Q · scale      (Dao et al., 2022, Alg. 4)
// Memory: O(L) beyond the inputs and gradients. Each (batch, head) pair is one task, so dK and dV
// rows are written by one thread only (no atomics). Rows with lse = -inf (fully masked) get dQ = 0
// and add nothing to dK/dV.
// Measured: see benchmarks/results/attention.json.
// Reference: minitx/backends/numpy_ref.py::attention_backward
#include <algorithm>
#include <vector>

#include "attention/attention.h"
#include "simd.h"

namespace minitx {

static constexpr Index kTile = 64;

void flash_attention_backward(const AttnShape& s, const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, const AttnMask& mask, float* dq, float* dk,
                              float* dv) {
    const double work = double(s.B) * s.H * s.Lq * s.Lk * (s.D + s.Dv);
    parallel_for(s.B * s.H, [&](Index bh) {
        const Index b = bh / s.H, h = bh % s.H;
        const float* kh = k + bh * s.Lk * s.D;
        const float* vh = v + bh * s.Lk * s.Dv;
        float* dkh = dk + bh * s.Lk * s.D;
        float* dvh = dv + bh * s.Lk * s.Dv;
        std::fill(dkh, dkh + s.Lk * s.D, 0.f);
        std::fill(dvh, dvh + s.Lk * s.Dv, 0.f);
        std::vector<float> p(kTile);
        for (Index i = 0; i < s.Lq; ++i) {
            const Index row = bh * s.Lq + i;
            const float* qi = q + row * s.D;
            const float* doi = dout + row * s.Dv;
            float* dqi = dq + row * s.D;
            std::fill(dqi, dqi + s.D, 0.f);
            if (lse[row] == -INFINITY) continue;
            const float delta = simd::dot(doi, out + row * s.Dv, s.Dv);
            const Index mask_row = mask.row(b, h, i), n_keys = s.keys_visible(i);
            for (Index j0 = 0; j0 < n_keys; j0 += kTile) {
                const Index n = std::min(kTile, n_keys - j0);
                for (Index t = 0; t < n; ++t) {
                    float sc = simd::dot(qi, kh + (j0 + t) * s.D, s.D) * s.scale;
                    if (mask.any()) sc += mask.bias(mask_row, j0 + t);
                    p[t] = sc;
                }
                simd::exp_shift_sum(p.data(), -lse[row], p.data(), n);
                for (Index t = 0; t < n; ++t) {
                    if (p[t] == 0.f) continue;
                    const Index j = j0 + t;
                    simd::axpy(dvh + j * s.Dv, p[t], doi, s.Dv);
                    const float ds = p[t] * (simd::dot(doi, vh + j * s.Dv, s.Dv) - delta) * s.scale;
                    simd::axpy(dqi, ds, kh + j * s.D, s.D);
                    simd::axpy(dkh + j * s.D, ds, qi, s.D);
                }
            }
        }
    }, work < 1e6 ? 1 : 0);
}

}  // namespace minitx
