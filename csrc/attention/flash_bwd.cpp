// Flash attention backward: gradients from the saved lse, recomputing P tile by tile (never stored):
//   P = exp(S - lse),  dV = Pᵀ dO,  dP = dO Vᵀ,  Δ_i = Σ_d dO_id O_id,
//   dS = P ∘ (dP - Δ),  dQ = dS K · scale,  dK = dSᵀ Q · scale      (Dao et al., 2022, Alg. 4)
// FlashAttention-2 loop order (Dao, 2023, Alg. 2): the outer loop is over blocks of kBlockK keys, so a
// task owns its rows of dK and dV; the inner loop walks the query blocks that can see those keys. Per
// (query block, key block) pair, five small matrix products on the register-tiled micro-kernel
// (gemm_tile_packed_b, csrc/matmul/micro_kernel.h; score tiles held transposed, st[key][query]):
//   Sᵀ = K_blk (scale·Q_blk)ᵀ,  dV_blk += Pᵀ dO_blk,  dPᵀ = V_blk dO_blkᵀ,  dK_blk += dSᵀ Q_blk,  dQ_blk += dS K_blk
// (scale folded into dS). Every B operand is packed into 16-column panels once: the four views of a query
// block (scale·Qᵀ, dOᵀ, dO, Q) in a parallel pre-pass that also computes Δ, K_blk by the task that owns
// it. dQ rows are hit by every key block, so each worker thread adds into its own copy (worker 0 straight
// into dq), zeroed by the worker itself, and the copies are summed in parallel at the end: no atomics, and
// the (batch, head, key block) tasks keep both cores busy even when B·H is 1.
// Memory: O(L): four packed copies of Q and dO and one dq-sized buffer per extra thread (in the calling
// thread's retained Scratch, common.h), a few tiles per thread; never the Lq×Lk matrix.
// Attention dropout (AttnDropout, attention.h): the factors Z are regenerated from the seed per tile, then
//   dV += (P ∘ Z)ᵀ dO,  dP = (dO Vᵀ) ∘ Z,  dS = P ∘ (dP - Δ)   (Δ = rowsum(dO ∘ O) = Σ_j P_ij dP_ij still).
// Rows with lse = -inf (fully masked) get dQ = 0 and add nothing to dK/dV. A row with lse = NaN (its
// forward was NaN) has P = exp(S - NaN) = NaN on every key of the tiles it meets, so its dQ, and dK/dV of
// those keys, are NaN.
// Speed: benchmarks/results/attention.json.
// Reference: minitx/backends/numpy_ref.py::attention_backward
#include <algorithm>
#include <vector>

#include "attention/attention.h"
#include "matmul/micro_kernel.h"
#include "simd.h"

namespace minitx {

// The per-query-block inputs every key block reads, packed once: panels of (scale·Q_blk)ᵀ (D × nq), dO_blkᵀ
// (Dv × nq), dO_blk (nq × Dv) and Q_blk (nq × D); block t of all heads starts at t times each stride.
struct PackedQueries {
    Index qt_stride, dot_stride, dout_stride, q_stride;
    float *qt = nullptr, *dot = nullptr, *dout = nullptr, *q = nullptr;
    explicit PackedQueries(const AttnShape& s)
        : qt_stride(panel_floats(s.D, kBlockQ)), dot_stride(panel_floats(s.Dv, kBlockQ)),
          dout_stride(panel_floats(kBlockQ, s.Dv)), q_stride(panel_floats(kBlockQ, s.D)) {}
    Index floats(Index blocks) const { return blocks * (qt_stride + dot_stride + dout_stride + q_stride); }
    float* place(float* at, Index blocks) {  // carves the four arrays out of `at`; returns the end
        qt = at;
        dot = qt + blocks * qt_stride;
        dout = dot + blocks * dot_stride;
        q = dout + blocks * dout_stride;
        return q + blocks * q_stride;
    }
};

struct BwdHead {  // one (batch, head) slice of every array; `block0` is the head's first query block
    const float *k, *v, *lse, *delta;
    const PackedQueries* packed;
    Index block0;
    float *dq, *dk, *dv;
};

// Keys [j0, j0 + nk) of one head against every query block that sees them.
static void backward_key_block(const AttnShape& s, const BwdHead& t, const AttnMask& mask, const AttnDropout& drop,
                               Index b, Index h, Index j0, Index nk) {
    std::vector<float> st(kBlockK * kBlockQ), dpt(kBlockK * kBlockQ), shift(kBlockQ), kp(panel_floats(nk, s.D));
    std::vector<float> zt(drop.on ? kBlockK * kBlockQ : 0);  // the tile's dropout factors, used twice
    float* dk = t.dk + j0 * s.D;
    float* dv = t.dv + j0 * s.Dv;
    std::fill(dk, dk + nk * s.D, 0.f);
    std::fill(dv, dv + nk * s.Dv, 0.f);
    const float* kb = t.k + j0 * s.D;
    const float* vb = t.v + j0 * s.Dv;
    pack_b_panels(nk, s.D, kb, s.D, 1, 1.f, kp.data());
    const PackedQueries& pq = *t.packed;
    for (Index i0 = 0; i0 < s.Lq; i0 += kBlockQ) {
        const Index nq = std::min(kBlockQ, s.Lq - i0);
        if (s.keys_visible(i0 + nq - 1) <= j0) continue;  // no query of this block sees these keys
        const Index blk = t.block0 + i0 / kBlockQ;
        for (Index c = 0; c < nq; ++c) shift[c] = t.lse[i0 + c] == -INFINITY ? INFINITY : t.lse[i0 + c];
        // P (transposed) = exp(S + bias - lse)
        gemm_tile_packed_b(nk, nq, s.D, kb, s.D, 1, pq.qt + blk * pq.qt_stride, st.data(), kBlockQ, false);
        if (tile_needs_mask(s, mask, i0, j0, nk)) mask_tile(s, mask, b, h, i0, nq, j0, nk, st.data());
        simd::exp_sub_cols(st.data(), nk, nq, kBlockQ, shift.data());
        // dPᵀ = (V dOᵀ) ∘ Z;  dSᵀ = scale · P ∘ (dPᵀ - Δ);  dV += (P ∘ Z)ᵀ dO
        gemm_tile_packed_b(nk, nq, s.Dv, vb, s.Dv, 1, pq.dot + blk * pq.dot_stride, dpt.data(), kBlockQ, false);
        if (drop.on) {
            dropout_factors(s, drop, b * s.H + h, i0, nq, j0, nk, zt.data());
            multiply_tile(zt.data(), nk, nq, dpt.data());
        }
        simd::softmax_grad_cols(dpt.data(), st.data(), nk, nq, kBlockQ, t.delta + i0, s.scale);
        if (drop.on) multiply_tile(zt.data(), nk, nq, st.data());
        gemm_tile_packed_b(nk, s.Dv, nq, st.data(), kBlockQ, 1, pq.dout + blk * pq.dout_stride, dv, s.Dv, true);
        // dK += dSᵀ Q;  dQ += dS K
        gemm_tile_packed_b(nk, s.D, nq, dpt.data(), kBlockQ, 1, pq.q + blk * pq.q_stride, dk, s.D, true);
        gemm_tile_packed_b(nq, s.D, nk, dpt.data(), 1, kBlockQ, kp.data(), t.dq + i0 * s.D, s.D, true);
    }
}

void flash_attention_backward(const AttnShape& s, const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, const AttnMask& mask, const AttnDropout& drop,
                              float* dq, float* dk, float* dv) {
    const Index heads = s.B * s.H, rows = heads * s.Lq, k_blocks = (s.Lk + kBlockK - 1) / kBlockK;
    const Index q_blocks = (s.Lq + kBlockQ - 1) / kBlockQ, n_tasks = heads * k_blocks;
    const double work = double(s.B) * s.H * s.Lq * s.Lk * (s.D + s.Dv);
    const int max_threads = work < 4e6 ? 1 : 0;
    // dQ rows are hit by every key block of their head, so the key blocks of one head are summed in a fixed order
    // (the same bits on every run): with enough heads, one task per head takes its key blocks in order and writes
    // dQ in place; with fewer heads than 2 per thread, the (head, key block) tasks are dealt to fixed slots
    // (parallel_for_slots), slot 0 adding into dq and slot s > 0 into its own copy, added in slot order last.
    const bool task_per_head = heads >= 2 * parallel_slots(heads, max_threads);  // slots = threads used
    const int slots = task_per_head ? 1 : parallel_slots(n_tasks, max_threads);
    // Scratch (kept by the thread between calls): the packed queries, then one dQ copy per slot after the first.
    const Index dq_size = rows * s.D;
    PackedQueries packed(s);
    Scratch scratch(packed.floats(heads * q_blocks) + (slots - 1) * dq_size);
    float* const dq_extra = packed.place(scratch.data(), heads * q_blocks);
    // Per query block, once (in parallel): Δ_i = dO_i · O_i and the four packed views every key block reads.
    std::vector<float> delta(rows);
    parallel_for(heads * q_blocks, [&](Index blk) {
        const Index bh = blk / q_blocks, i0 = (blk % q_blocks) * kBlockQ, nq = std::min(kBlockQ, s.Lq - i0);
        const Index r0 = bh * s.Lq + i0;
        const float *qb = q + r0 * s.D, *db = dout + r0 * s.Dv;
        for (Index r = r0; r < r0 + nq; ++r) delta[r] = simd::dot(dout + r * s.Dv, out + r * s.Dv, s.Dv);
        pack_b_panels(s.D, nq, qb, 1, s.D, s.scale, packed.qt + blk * packed.qt_stride);
        pack_b_panels(s.Dv, nq, db, 1, s.Dv, 1.f, packed.dot + blk * packed.dot_stride);
        pack_b_panels(nq, s.Dv, db, s.Dv, 1, 1.f, packed.dout + blk * packed.dout_stride);
        pack_b_panels(nq, s.D, qb, s.D, 1, 1.f, packed.q + blk * packed.q_stride);
    }, max_threads);
    const auto key_block = [&](Index task, float* dq_into) {  // task = (head, key block); dQ added into dq_into
        const Index bh = task / k_blocks, j0 = (task % k_blocks) * kBlockK;
        const BwdHead t{k + bh * s.Lk * s.D, v + bh * s.Lk * s.Dv, lse + bh * s.Lq, delta.data() + bh * s.Lq, &packed,
                        bh * q_blocks, dq_into + bh * s.Lq * s.D, dk + bh * s.Lk * s.D, dv + bh * s.Lk * s.Dv};
        backward_key_block(s, t, mask, drop, bh / s.H, bh % s.H, j0, std::min(kBlockK, s.Lk - j0));
    };
    if (task_per_head) {
        parallel_for(heads, [&](Index bh) {
            std::fill(dq + bh * s.Lq * s.D, dq + (bh + 1) * s.Lq * s.D, 0.f);
            for (Index task = bh * k_blocks; task < (bh + 1) * k_blocks; ++task) key_block(task, dq);
        }, max_threads);
        return;
    }
    std::fill(dq, dq + dq_size, 0.f);
    parallel_for_slots(n_tasks, [&](int slot, Index task) {
        float* const dq_s = slot == 0 ? dq : dq_extra + (slot - 1) * dq_size;
        if (slot > 0 && task == slot) std::fill(dq_s, dq_s + dq_size, 0.f);  // the slot's first task
        key_block(task, dq_s);
    }, max_threads);
    constexpr Index kChunk = 1 << 14;
    parallel_for((dq_size + kChunk - 1) / kChunk, [&](Index c) {
        const Index lo = c * kChunk, len = std::min(kChunk, dq_size - lo);
        for (int slot = 1; slot < slots; ++slot) simd::axpy(dq + lo, 1.f, dq_extra + (slot - 1) * dq_size + lo, len);
    }, slots > 1 ? max_threads : 1);
}

}  // namespace minitx
