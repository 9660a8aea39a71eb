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
#include <memory>
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
        simd::softmax_grad_cols(dpt.data(), st.data(), nk, nq, kBlockQ, t.delta + i0, s.scale);
        // dK += dSᵀ Q;  dQ += dS K
        simd::gemm_tile(nk, s.D, nq, dpt.data(), kBlockQ, 1, t.q + i0 * s.D, s.D, dk, s.D, true);
        simd::gemm_tile(nq, s.D, nk, dpt.data(), 1, kBlockQ, kb, s.D, t.dq + i0 * s.D, s.D, true);
    }
}

void flash_attention_backward(const AttnShape& s, const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, const AttnMask& mask, float* dq, float* dk,
                              float* dv) {
    const Index heads = s.B * s.H, rows = heads * s.Lq, k_blocks = (s.Lk + kBlockK - 1) / kBlockK;
    const Index q_blocks = (s.Lq + kBlockQ - 1) / kBlockQ, n_tasks = heads * k_blocks;
    const double work = double(s.B) * s.H * s.Lq * s.Lk * (s.D + s.Dv);
    const int max_threads = work < 4e6 ? 1 : 0;
    // Per query block, once (in parallel): Δ_i = dO_i · O_i and the packed Qᵀ, dOᵀ that every key block reads.
    // The packed buffers are left uninitialised: the tile products never read columns past nq.
    std::vector<float> delta(rows);
    std::unique_ptr<float[]> qt(new float[heads * q_blocks * kBlockQ * s.D]);
    std::unique_ptr<float[]> dot(new float[heads * q_blocks * kBlockQ * s.Dv]);
    parallel_for(heads * q_blocks, [&](Index task) {
        const Index bh = task / q_blocks, i0 = (task % q_blocks) * kBlockQ, nq = std::min(kBlockQ, s.Lq - i0);
        const Index r0 = bh * s.Lq + i0;
        for (Index r = r0; r < r0 + nq; ++r) delta[r] = simd::dot(dout + r * s.Dv, out + r * s.Dv, s.Dv);
        pack_transposed(q + r0 * s.D, nq, s.D, s.scale, qt.get() + task * kBlockQ * s.D);
        pack_transposed(dout + r0 * s.Dv, nq, s.Dv, 1.f, dot.get() + task * kBlockQ * s.Dv);
    }, max_threads);
    // dQ rows are hit by every key block: worker 0 adds into dq, worker w > 0 into a private copy; each
    // zeroes its own buffer at its first task (in parallel, page faults included), the copies are summed last.
    const int workers = parallel_workers(n_tasks, max_threads);
    std::vector<std::unique_ptr<float[]>> dq_extra(workers);
    std::vector<float*> dq_of(workers, nullptr);  // set by worker w itself: no two threads write one element
    const Index dq_size = rows * s.D;
    parallel_for_worker(n_tasks, [&](Index task, int w) {
        if (!dq_of[w]) {
            if (w > 0) dq_extra[w].reset(new float[dq_size]);
            dq_of[w] = w == 0 ? dq : dq_extra[w].get();
            std::fill(dq_of[w], dq_of[w] + dq_size, 0.f);
        }
        const Index bh = task / k_blocks, j0 = (task % k_blocks) * kBlockK;
        const BwdHead t{q + bh * s.Lq * s.D, k + bh * s.Lk * s.D, v + bh * s.Lk * s.Dv, dout + bh * s.Lq * s.Dv,
                        lse + bh * s.Lq, delta.data() + bh * s.Lq, qt.get() + bh * q_blocks * kBlockQ * s.D,
                        dot.get() + bh * q_blocks * kBlockQ * s.Dv, dq_of[w] + bh * s.Lq * s.D, dk + bh * s.Lk * s.D,
                        dv + bh * s.Lk * s.Dv};
        backward_key_block(s, t, mask, bh / s.H, bh % s.H, j0, std::min(kBlockK, s.Lk - j0));
    }, max_threads);
    if (!dq_of[0]) std::fill(dq, dq + dq_size, 0.f);  // the caller took no task (or there were none)
    constexpr Index kChunk = 1 << 14;
    parallel_for((dq_size + kChunk - 1) / kChunk, [&](Index c) {
        const Index lo = c * kChunk, len = std::min(kChunk, dq_size - lo);
        for (int w = 1; w < workers; ++w)
            if (dq_of[w]) simd::axpy(dq + lo, 1.f, dq_of[w] + lo, len);
    }, workers > 1 ? max_threads : 1);
}

}  // namespace minitx
