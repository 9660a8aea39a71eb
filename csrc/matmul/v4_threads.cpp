// Rung 4: multi-threaded v3. Adds over v3: C is split into num_threads() rectangles (column strips
// aligned to 32, or row strips when N is narrow), each computed by v3 on its own thread with its own
// packing buffers: no locks or barriers, and only A (or B) is packed twice. Batched products with at
// least num_threads() members are spread whole over the threads instead. Small products (< 2 MFLOP)
// stay on the calling thread. The threads are the resident pool of csrc/runtime.cpp (a worker bound
// to the other core, spinning ~3 ms between back-to-back calls): spawning a thread per call cost its
// ~2 MB of packing buffers (allocated, zeroed, page-faulted) every time and let the scheduler queue it
// behind the caller on one core.
// Products with at most 16 rows (a decoder step) take the skinny path instead (csrc/matmul/skinny.cpp):
// packing would copy the whole of B to use each element a few times; products of up to 64 rows read B in place
// as the broadcast operand of Cᵀ = Bᵀ·Aᵀ (csrc/matmul/few_rows.cpp).
// Threads: 2 by default, MINITX_NUM_THREADS or minitx.kernels.set_num_threads(n). Benchmarks limit
// OpenBLAS to its own threads with threadpoolctl so the two pools do not oversubscribe the cores.
// Speed: benchmarks/results/matmul.json.
// Reference: minitx/backends/numpy_ref.py::matmul
#include <algorithm>

#include "matmul/matmul.h"

namespace minitx {

void gemm_v3_packed_sub(Index M, Index N, Index K, MatRef A, MatRef B, float* C, Index ldc);

static constexpr double kParallelFlops = 2e6;

static bool worth_threads(Index M, Index N, Index K) {
    return num_threads() > 1 && 2.0 * double(M) * double(N) * double(K) >= kParallelFlops;
}

// One product on the calling thread (a member of a batch spread over the threads).
static void gemm_one_thread(Index M, Index N, Index K, MatRef A, MatRef B, float* C) {
    if (skinny_fits(M, A, B)) return gemm_skinny(M, N, K, A, B, C, false);
    if (few_rows_fits(M)) return gemm_few_rows(M, N, K, A, B, C, false);
    gemm_v3_packed(M, N, K, A, B, C);
}

void gemm_v4_threads(Index M, Index N, Index K, MatRef A, MatRef B, float* C) {
    if (skinny_fits(M, A, B)) return gemm_skinny(M, N, K, A, B, C, true);
    if (few_rows_fits(M)) return gemm_few_rows(M, N, K, A, B, C, true);
    if (!worth_threads(M, N, K)) return gemm_v3_packed(M, N, K, A, B, C);
    const Index T = num_threads();
    const bool split_columns = N >= 32 * T;
    const Index extent = split_columns ? N : M;
    const Index align = split_columns ? 32 : 6;
    const Index chunk = ((extent + T - 1) / T + align - 1) / align * align;
    const Index n_chunks = (extent + chunk - 1) / chunk;
    parallel_for(n_chunks, [&](Index t) {
        const Index lo = t * chunk, len = std::min(chunk, extent - lo);
        if (split_columns)
            gemm_v3_packed_sub(M, len, K, A, MatRef{B.p + lo * B.cs, B.rs, B.cs}, C + lo, N);
        else
            gemm_v3_packed_sub(len, N, K, MatRef{A.p + lo * A.rs, A.rs, A.cs}, B, C + lo * N, N);
    });
}

static const GemmFn kRungs[kMatmulVersions] = {gemm_v0_naive, gemm_v1_loop_order, gemm_v2_blocked, gemm_v3_packed,
                                               gemm_v4_threads};

void gemm_batched(int version, Index batch, Index M, Index N, Index K, const float* A, const Index* a_off, Index rsa,
                  Index csa, const float* B, const Index* b_off, Index rsb, Index csb, float* C) {
    auto one = [&](GemmFn fn, Index b) {
        fn(M, N, K, MatRef{A + a_off[b], rsa, csa}, MatRef{B + b_off[b], rsb, csb}, C + b * M * N);
    };
    if (version == 4 && batch >= num_threads() && worth_threads(M * batch, N, K)) {
        parallel_for(batch, [&](Index b) { one(gemm_one_thread, b); });
        return;
    }
    for (Index b = 0; b < batch; ++b) one(kRungs[version], b);
}

}  // namespace minitx
