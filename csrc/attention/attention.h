// Fused (flash) attention, forward and backward (Dao et al., 2022; FlashAttention-2, Dao 2023).
// Shapes: q (B,H,Lq,D), k (B,H,Lk,D), v (B,H,Lk,Dv), out (B,H,Lq,Dv), lse (B,H,Lq).
// Reference: minitx/backends/numpy_ref.py::attention_forward / attention_backward
#pragma once
#include <cmath>
#include <cstdint>

#include "common.h"

namespace minitx {

// A mask broadcast to (B,H,Lq,Lk) through strides (0 on broadcast axes): boolean (true = attend) or
// additive float, -inf = blocked (minitx/masks.py). Causality is separate: query i sees keys
// j <= i + (Lk - Lq) (aligned to the end).
struct AttnMask {
    const bool* keep = nullptr;
    const float* add = nullptr;
    Index s_b = 0, s_h = 0, s_q = 0, s_k = 0;
    Index row(Index b, Index h, Index i) const { return b * s_b + h * s_h + i * s_q; }
    bool any() const { return keep || add; }
    // The score seen through the mask: -inf where key j is blocked, *replacing* the score (x + -inf would
    // keep a NaN, and a NaN behind a mask stays hidden: minitx/masks.py), else score + the additive value.
    float apply(Index row_off, Index j, float score) const {
        if (keep) return keep[row_off + j * s_k] ? score : -INFINITY;
        if (add) {
            const float a = add[row_off + j * s_k];
            return a == -INFINITY ? a : score + a;
        }
        return score;
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

// Attention dropout on P from a counter-based hash, so the backward regenerates the mask instead of storing it:
// element n = ((b·H + h)·Lq + i)·Lk + j of the (B,H,Lq,Lk) matrix is kept iff
// splitmix64(seed + (n+1)·0x9E3779B97F4A7C15) >> 40 >= threshold (= floor(p·2²⁴)); kept values are scaled by
// 1/(1-p), dropped ones become 0 (inverted dropout).
// Reference: minitx/backends/numpy_ref.py::attention_dropout_scale
struct AttnDropout {
    bool on = false;
    std::uint64_t seed = 0;
    std::uint32_t threshold = 0;
    float scale = 1.f;
    static std::uint64_t splitmix64(std::uint64_t z) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    float factor(Index n) const {
        const std::uint64_t z = splitmix64(seed + (std::uint64_t(n) + 1) * 0x9E3779B97F4A7C15ull);
        return (z >> 40) >= threshold ? scale : 0.f;
    }
};

// Tiles: a block of kBlockQ queries meets a tile of kBlockK keys; scores are held transposed, st[key][query]
// (kBlockK × kBlockQ floats, 64 KiB, L2-resident), so per-query softmax statistics are vectors across a row.
// 128 × 128 rather than 64 × 64: each query block reads K and V half as often (measured on the forward,
// (1,8,L,64), 2 threads: 4-10% faster at L = 512-4096 than 64 × 64; 96 and 48 keys per tile were no better).
inline constexpr Index kBlockQ = 128;
inline constexpr Index kBlockK = 128;

// Causal limit and mask on a transposed score tile st[r][c] (key j0 + r, query i0 + c): keys past the
// causal limit become -inf, the rest go through the mask (AttnMask::apply). Only called for tiles that need it.
inline void mask_tile(const AttnShape& s, const AttnMask& mask, Index b, Index h, Index i0, Index nq, Index j0,
                      Index nk, float* st) {
    for (Index c = 0; c < nq; ++c) {
        const Index visible = s.keys_visible(i0 + c), row = mask.row(b, h, i0 + c);
        for (Index r = 0; r < nk; ++r) {
            float& x = st[r * kBlockQ + c];
            x = j0 + r >= visible ? -INFINITY : mask.apply(row, j0 + r, x);
        }
    }
}

// The dropout factors Z of a transposed tile (key j0 + r, query i0 + c) of head bh = b·H + h, into zt[r][c]
// (computed once per tile: the backward applies them to two tiles).
inline void dropout_factors(const AttnShape& s, const AttnDropout& drop, Index bh, Index i0, Index nq, Index j0,
                            Index nk, float* zt) {
    for (Index c = 0; c < nq; ++c) {
        const Index row = (bh * s.Lq + i0 + c) * s.Lk + j0;
        for (Index r = 0; r < nk; ++r) zt[r * kBlockQ + c] = drop.factor(row + r);
    }
}

// st ∘= zt on the nk × nq entries of a transposed tile.
inline void multiply_tile(const float* zt, Index nk, Index nq, float* st) {
    for (Index r = 0; r < nk; ++r)
        for (Index c = 0; c < nq; ++c) st[r * kBlockQ + c] *= zt[r * kBlockQ + c];
}

// Does the tile (queries [i0, i0+nq), keys [j0, j0+nk)) need mask_tile? (a mask, or the causal edge crosses it)
inline bool tile_needs_mask(const AttnShape& s, const AttnMask& mask, Index i0, Index j0, Index nk) {
    return mask.any() || j0 + nk > s.keys_visible(i0);
}

void flash_attention_forward(const AttnShape& s, const float* q, const float* k, const float* v, const AttnMask& mask,
                             const AttnDropout& drop, float* out, float* lse);

// The (Lk × D) rows of every head of a (B, H, Lk, D) array at p + b·sb + h·sh, each head's rows contiguous: a
// KV cache's filled prefix (sh = capacity·D) or a broadcast (stride 0) is read in place.
struct HeadRows {
    const float* p;
    Index sb, sh;
    const float* head(Index b, Index h) const { return p + b * sb + h * sh; }
};

// Decoding (csrc/attention/decode.cpp): at most kDecodeMaxQueries queries per head (a KV-cache step) and no
// dropout: scores, softmax and P·V row by row, K and V read in place (HeadRows), nothing packed.
inline constexpr Index kDecodeMaxQueries = 4;
inline bool decode_fits(Index queries, const AttnDropout& drop) { return !drop.on && queries <= kDecodeMaxQueries; }
void decode_attention_forward(const AttnShape& s, const float* q, HeadRows k, HeadRows v, const AttnMask& mask,
                              float* out, float* lse);
void flash_attention_backward(const AttnShape& s, const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, const AttnMask& mask, const AttnDropout& drop,
                              float* dq, float* dk, float* dv);

}  // namespace minitx
