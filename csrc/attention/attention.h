// Fused (flash) attention, forward and backward (Dao et al., 2022; FlashAttention-2, Dao 2023).
// Shapes: q (B,H,Lq,D), k (B,H,Lk,D), v (B,H,Lk,Dv), out (B,H,Lq,Dv), lse (B,H,Lq).
// Reference: minitx/backends/numpy_ref.py::attention_forward / attention_backward
#pragma once
#include <cmath>

#include "common.h"

namespace minitx {

// A mask broadcast to (B,H,Lq,Lk) through strides (0 on broadcast axes): boolean (true = attend) or
// additive float. Causality is separate: query i sees keys j <= i + (Lk - Lq) (aligned to the end).
struct AttnMask {
    const bool* keep = nullptr;
    const float* add = nullptr;
    Index s_b = 0, s_h = 0, s_q = 0, s_k = 0;
    Index row(Index b, Index h, Index i) const { return b * s_b + h * s_h + i * s_q; }
    bool any() const { return keep || add; }
    float bias(Index row_off, Index j) const {
        if (keep) return keep[row_off + j * s_k] ? 0.f : -INFINITY;
        if (add) return add[row_off + j * s_k];
        return 0.f;
    }
};

struct AttnShape {
    Index B, H, Lq, Lk, D, Dv;
    bool causal;
    float scale;
    Index keys_visible(Index i) const {  // number of keys query i may see before the mask
        if (!causal) return Lk;
        const Index last = i + (Lk - Lq);
        return last < 0 ? 0 : (last + 1 < Lk ? last + 1 : Lk);
    }
};

void flash_attention_forward(const AttnShape& s, const float* q, const float* k, const float* v, const AttnMask& mask,
                             float* out, float* lse);
void flash_attention_backward(const AttnShape& s, const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, const AttnMask& mask, float* dq, float* dk,
                              float* dv);

}  // namespace minitx
