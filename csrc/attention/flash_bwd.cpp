// Flash attention backward: gradients from the saved lse, recomputing P tile by tile (never stored):
//   P = exp(S - lse),  dV = Pᵀ dO,  dP = dO Vᵀ,  Δ_i = Σ_d dO_id O_id,
//   dS = P ∘ (dP - Δ),  dQ = dS K · scale,  dK = dSᵀ Q · scale      (Dao et al., 2022, Alg. 4)
// FlashAttention-2 loop order (Dao, 2023, Alg. 2): the outer loop is over blocks of kBlockK keys, so a
// task owns its rows of dK and dV; the inner loop walks the query blocks that can see those keys. Per
// (query block, key block) pair, five small matrix products on simd::gemm_tile (tiles held transposed,
// st[key][query]):
//   Sᵀ = K_blk (scale·Q_blk)ᵀ,  dV_blk += Pᵀ dO_blk,  dPᵀ = V_blk dO_blkᵀ,  dK_blk += dSᵀ Q_blk,  dQ_blk += dS K_blk
// (scale folded into dS). dQ rows are hit by every key block, so each worker thread adds into its own
// copy (worker 0 straight into dq) and the copies are summed at the end: no atomics, and the (batch,
// head, key block) tasks keep both cores busy even when B·H is 1.
// Memory: O(L): packed copies of Qᵀ and dOᵀ (made once, read by every key block), one dq-sized buffer
// per extra thread, and a few score tiles per thread; never the Lq×Lk matrix.
// Rows with lse = -inf (fully masked) get dQ = 0 and add nothing to dK/dV.
// Measured (1,8,L,64), 2 threads, shared 2-core machine: 2.1-2.9× our own forward (L = 512…4096; 20 ms at
// L = 512, 1.7 s at 4096), about torch's backward time; the previous (B,H)-parallel row-at-a-time kernel
// ran on one thread when B·H was small. benchmarks/results/attention.json has the latest run.
// Reference: minitx/backends/numpy_ref.py::attention_backward
#include <algorithm>
#include <vector>

#include "attention/attention.h"
#include "simd.h"

namespace minitx {

struct BwdHead {  // one (batch, head) slice of every array
    const float *q, *k, *v, *dout, *lse, *delta;
    const float *qt, *dot;  // per query block: (scale·Q_blk)ᵀ (D × kBlockQ) and dO_blkᵀ (Dv × kBlockQ), packed once
    float *dq, *dk, *dv;
};

// Keys [j0, j0 + nk) of one head against every query block that sees them.
static void backward_key_block(const AttnShape& s, const BwdHead& t, const AttnMask& mask, Index b, Index h, Index j0,
                               Index nk) {
    std::vector<float> st(kBlockK * kBlockQ), dpt(kBlockK * kBlockQ), shift(kBlockQ);
    float* dk = t.dk + j0 * s.D;
    float* dv = t.dv + j0 * s.Dv;
    std::fill(dk, dk + nk * s.D, 0.f);
    std::fill(dv, dv + nk * s.Dv, 0.f);
    const float* kb = t.k + j0 * s.D;
    const float* vb = t.v + j0 * s.Dv;
    for (Index i0 = 0; i0 < s.Lq; i0 += kBlockQ) {
        const Index nq = std::min(kBlockQ, s.Lq - i0);
        if (s.keys_visible(i0 + nq - 1) <= j0) continue;  // no query of this block sees these keys
        const float* qt = t.qt + i0 * s.D;  // block i0 / kBlockQ starts at (i0 / kBlockQ) · D · kBlockQ
        const float* dot = t.dot + i0 * s.Dv;
        for (Index c = 0; c < nq; ++c) shift[c] = t.lse[i0 + c] == -INFINITY ? INFINITY : t.lse[i0 + c];
        // P (transposed) = exp(S + bias - lse)
        simd::gemm_tile(nk, nq, s.D, kb, s.D, 1, qt, kBlockQ, st.data(), kBlockQ, false);
        if (tile_needs_mask(s, mask, i0, j0, nk)) mask_tile(s, mask, b, h, i0, nq, j0, nk, st.data());
        simd::exp_sub_cols(st.data(), nk, nq, kBlockQ, shift.data());
        // dV += Pᵀ dO;  dPᵀ = V dOᵀ
        simd::gemm_tile(nk, s.Dv, nq, st.data(), kBlockQ, 1, t.dout + i0 * s.Dv, s.Dv, dv, s.Dv, true);
        simd::gemm_tile(nk, nq, s.Dv, vb, s.Dv, 1, dot, kBlockQ, dpt.data(), kBlockQ, false);
        // dSᵀ = scale · P ∘ (dPᵀ - Δ)
        const float* delta = t.delta + i0;
        for (Index r = 0; r < nk; ++r) {
            const float* p = st.data() + r * kBlockQ;
            float* ds = dpt.data() + r * kBlockQ;
            for (Index c = 0; c < nq; ++c) ds[c] = s.scale * p[c] * (ds[c] - delta[c]);
        }
        // dK += dSᵀ Q;  dQ += dS K
        simd::gemm_tile(nk, s.D, nq, dpt.data(), kBlockQ, 1, t.q + i0 * s.D, s.D, dk, s.D, true);
        simd::gemm_tile(nq, s.D, nk, dpt.data(), 1, kBlockQ, kb, s.D, t.dq + i0 * s.D, s.D, true);
    }
}

void flash_attention_backward(const AttnShape& s, const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, const AttnMask& mask, float* dq, float* dk,
                              float* dv) {
    const Index rows = s.B * s.H * s.Lq, k_blocks = (s.Lk + kBlockK - 1) / kBlockK;
    const double work = double(s.B) * s.H * s.Lq * s.Lk * (s.D + s.Dv);
    const int max_threads = work < 4e6 ? 1 : 0;
    const Index n_tasks = s.B * s.H * k_blocks;
    std::vector<float> delta(rows);
    for (Index r = 0; r < rows; ++r) delta[r] = simd::dot(dout + r * s.Dv, out + r * s.Dv, s.Dv);
    std::fill(dq, dq + rows * s.D, 0.f);
    // Qᵀ and dOᵀ packed per query block once, not once per (key block, query block) pair
    const Index q_blocks = (s.Lq + kBlockQ - 1) / kBlockQ, heads = s.B * s.H;
    std::vector<float> qt(heads * q_blocks * kBlockQ * s.D), dot(heads * q_blocks * kBlockQ * s.Dv);
    parallel_for(heads * q_blocks, [&](Index task) {
        const Index bh = task / q_blocks, i0 = (task % q_blocks) * kBlockQ, nq = std::min(kBlockQ, s.Lq - i0);
        pack_transposed(q + (bh * s.Lq + i0) * s.D, nq, s.D, s.scale, qt.data() + task * kBlockQ * s.D);
        pack_transposed(dout + (bh * s.Lq + i0) * s.Dv, nq, s.Dv, 1.f, dot.data() + task * kBlockQ * s.Dv);
    }, max_threads);
    const int workers = parallel_workers(n_tasks, max_threads);
    std::vector<std::vector<float>> dq_extra(workers - 1, std::vector<float>(rows * s.D, 0.f));
    parallel_for_worker(n_tasks, [&](Index task, int w) {
        const Index bh = task / k_blocks, j0 = (task % k_blocks) * kBlockK;
        float* dq_w = w == 0 ? dq : dq_extra[w - 1].data();
        const BwdHead t{q + bh * s.Lq * s.D, k + bh * s.Lk * s.D, v + bh * s.Lk * s.Dv, dout + bh * s.Lq * s.Dv,
                        lse + bh * s.Lq, delta.data() + bh * s.Lq, qt.data() + bh * q_blocks * kBlockQ * s.D,
                        dot.data() + bh * q_blocks * kBlockQ * s.Dv, dq_w + bh * s.Lq * s.D, dk + bh * s.Lk * s.D,
                        dv + bh * s.Lk * s.Dv};
        backward_key_block(s, t, mask, bh / s.H, bh % s.H, j0, std::min(kBlockK, s.Lk - j0));
    }, max_threads);
    for (const auto& extra : dq_extra)
        for (Index i = 0; i < rows * s.D; ++i) dq[i] += extra[i];
}

}  // namespace minitx
