// Flash attention forward: out = dropout(softmax(q kᵀ · scale + bias)) v without forming the Lq×Lk matrix.
// A block of kBlockQ queries streams K/V in tiles of kBlockK keys with an online softmax: a running max
// m, running sum l and unnormalised accumulator acc per query, rescaled by exp(m_old - m_new) whenever a
// tile raises the max (Milakov & Gimelshein, 2018; Dao et al., 2022, Alg. 1; FlashAttention-2 loop order).
// Each tile is two small matrix products on the register-tiled micro-kernel (gemm_tile_packed_b in
// csrc/matmul/micro_kernel.h, shared with the matmul ladder):
//   Sᵀ = K_tile · (scale·Q_blk)ᵀ   (kBlockK × kBlockQ),   acc += P · V_tile   (P read transposed, no copy)
// Their B operands are packed into 16-column panels (pack_b_panels) so each micro-kernel step reads
// one contiguous 64-byte row: (scale·Q_blk)ᵀ once per query block, every V tile once per call (a parallel
// pre-pass into the calling thread's Scratch; packing V per (query block, tile) pair was 6% of the time).
// The only extra memory is one score tile and the packed panels; out = acc / l and lse = m + log l are kept
// for the backward. Attention dropout (AttnDropout, attention.h) multiplies the tile's exp(S - m) by its
// factors after l has summed them and before P · V: out = ((P̃ ∘ Z) V) / l, with l undropped.
// A row that sees no key (all blocked: -inf) gets out = 0 and lse = -inf, never NaN. A row with a NaN among
// the scores it sees (a NaN in its query, or in a key it may see; +inf scores too) gets out = NaN and
// lse = NaN, as torch: the NaN reaches l through the exp (simd::online_softmax_cols). A NaN behind the
// mask stays hidden (AttnMask::apply). (batch, head, query block) triples are spread over threads;
// causal blocks stop at their last visible key.
// Speed: benchmarks/results/attention.json.
// Reference: minitx/backends/numpy_ref.py::attention_forward
#include <algorithm>
#include <vector>

#include "attention/attention.h"
#include "matmul/micro_kernel.h"
#include "simd.h"

namespace minitx {

// One block of nq queries [i0, i0 + nq) of head (b, h) against all the keys it may see; `vp` holds the
// head's V tiles packed into panels (tile t at t · panel_floats(kBlockK, Dv)).
static void forward_block(const AttnShape& s, const float* qh, const float* kh, const float* vp, const AttnMask& mask,
                          const AttnDropout& drop, Index b, Index h, Index i0, Index nq, float* outh, float* lseh) {
    std::vector<float> qp(s.D * kBlockQ), st(kBlockK * kBlockQ), acc(kBlockQ * s.Dv, 0.f);
    std::vector<float> m(kBlockQ, -INFINITY), l(kBlockQ, 0.f), corr(kBlockQ), zt(drop.on ? kBlockK * kBlockQ : 0);
    pack_b_panels(s.D, nq, qh + i0 * s.D, 1, s.D, s.scale, qp.data());  // (scale·Q_blk)ᵀ, once per block
    const Index n_keys = s.keys_visible(i0 + nq - 1);  // the last query of the block sees the most keys
    for (Index j0 = 0; j0 < n_keys; j0 += kBlockK) {
        const Index nk = std::min(kBlockK, n_keys - j0);
        gemm_tile_packed_b(nk, nq, s.D, kh + j0 * s.D, s.D, 1, qp.data(), st.data(), kBlockQ, false);
        if (tile_needs_mask(s, mask, i0, j0, nk)) mask_tile(s, mask, b, h, i0, nq, j0, nk, st.data());
        simd::online_softmax_cols(st.data(), nk, nq, kBlockQ, m.data(), l.data(), corr.data());
        for (Index c = 0; c < nq; ++c)
            if (corr[c] != 1.f) simd::scale(acc.data() + c * s.Dv, corr[c], s.Dv);
        if (drop.on) {
            dropout_factors(s, drop, b * s.H + h, i0, nq, j0, nk, zt.data());
            multiply_tile(zt.data(), nk, nq, st.data());
        }
        const float* v_tile = vp + (j0 / kBlockK) * panel_floats(kBlockK, s.Dv);
        gemm_tile_packed_b(nq, s.Dv, nk, st.data(), 1, kBlockQ, v_tile, acc.data(), s.Dv, true);
    }
    for (Index c = 0; c < nq; ++c) {
        float* out_i = outh + (i0 + c) * s.Dv;
        if (l[c] == 0.f) {
            std::fill(out_i, out_i + s.Dv, 0.f);
            lseh[i0 + c] = -INFINITY;
            continue;
        }
        const float inv = 1.f / l[c];
        for (Index d = 0; d < s.Dv; ++d) out_i[d] = acc[c * s.Dv + d] * inv;
        lseh[i0 + c] = m[c] + std::log(l[c]);
    }
}

void flash_attention_forward(const AttnShape& s, const float* q, const float* k, const float* v, const AttnMask& mask,
                             const AttnDropout& drop, float* out, float* lse) {
    const Index heads = s.B * s.H, q_blocks = (s.Lq + kBlockQ - 1) / kBlockQ;
    const Index k_tiles = (s.Lk + kBlockK - 1) / kBlockK, tile_floats = panel_floats(kBlockK, s.Dv);
    const double work = double(s.B) * s.H * s.Lq * s.Lk * (s.D + s.Dv);
    const int max_threads = work < 4e6 ? 1 : 0;
    // Every V tile packed once (in parallel), not once per query block that reads it.
    Scratch v_packed(heads * k_tiles * tile_floats);
    parallel_for(heads * k_tiles, [&](Index t) {
        const Index bh = t / k_tiles, j0 = (t % k_tiles) * kBlockK;
        pack_b_panels(std::min(kBlockK, s.Lk - j0), s.Dv, v + (bh * s.Lk + j0) * s.Dv, s.Dv, 1, 1.f,
                      v_packed.data() + t * tile_floats);
    }, max_threads);
    parallel_for(heads * q_blocks, [&](Index task) {
        const Index bh = task / q_blocks, i0 = (task % q_blocks) * kBlockQ;
        forward_block(s, q + bh * s.Lq * s.D, k + bh * s.Lk * s.D, v_packed.data() + bh * k_tiles * tile_floats,
                      mask, drop, bh / s.H, bh % s.H, i0, std::min(kBlockQ, s.Lq - i0), out + bh * s.Lq * s.Dv,
                      lse + bh * s.Lq);
    }, max_threads);
}

}  // namespace minitx
