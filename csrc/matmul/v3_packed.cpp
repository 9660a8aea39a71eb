// Rung 3: packed panels + a SIMD register-tiled micro-kernel (Goto & van de Geijn, 2008; the BLIS loops).
// Adds over v2:
//   * packing: a KC×NC block of B and an MC×KC block of A are copied into contiguous micro-panels
//     (16 columns / 6 rows interleaved by k), zero-padded at the edges, so the micro-kernel streams
//     both with unit stride and no TLB misses; transposed operands cost nothing extra (the pack reads
//     any strides);
//   * the micro-kernel keeps a 6×16 tile of C in registers for the whole K loop: per k it loads one
//     row of the B panel and broadcasts 6 values of A: 12 FMAs per 2 loads + 6 broadcasts (AVX2+FMA:
//     12 ymm accumulators; scalar: plain C++); AVX-512 takes 6×32 (two panels) in 12 zmm accumulators.
// The micro-kernel and the B packer are shared with flash attention: csrc/matmul/micro_kernel.h.
// Blocks are balanced (K = 384 is 2×192, not 256 + 128).
// Speed: benchmarks/results/matmul.json.
// Reference: minitx/backends/numpy_ref.py::matmul
#include <algorithm>
#include <vector>

#include "matmul/matmul.h"
#include "matmul/micro_kernel.h"

namespace minitx {

// Block sizes for Zen 3 / Skylake-class caches (32 KB L1d, 512 KB-1 MB L2 per core): a KC×16 micro-panel
// of B (16 KB) stays in L1 across the MC/MR micro-kernels of one block, the MC×KC block of A (120 KB)
// in L2, the KC×NC block of B (2 MB) in L3. Measured on the 2-core EPYC: MC 72-240, KC 256-512 are
// within noise of each other; the loop order and the pool (v4) matter far more.
static constexpr Index MR = kMicroRows, MC = 120, KC = 256, NC = 2048;

// A block (mc×kc) -> panels of MR rows: Ap[panel][p][r] = A(i + r, p), zero beyond mc.
static void pack_a(Index mc, Index kc, MatRef A, float* Ap) {
    for (Index i = 0; i < mc; i += MR) {
        const Index mr = std::min(MR, mc - i);
        for (Index p = 0; p < kc; ++p, Ap += MR) {
            for (Index r = 0; r < mr; ++r) Ap[r] = A.at(i + r, p);
            for (Index r = mr; r < MR; ++r) Ap[r] = 0.f;
        }
    }
}

// The block size for splitting `extent` into ceil(extent / max_block) near-equal blocks, each a multiple
// of `multiple` (the micro-tile) and at most max_block (itself a multiple).
static Index balanced(Index extent, Index max_block, Index multiple) {
    const Index blocks = (extent + max_block - 1) / max_block;
    const Index size = (extent + blocks - 1) / blocks;
    return std::min(max_block, (size + multiple - 1) / multiple * multiple);
}

// The five loops around the micro-kernel, for C with leading dimension ldc.
static void gemm_packed_ld(Index M, Index N, Index K, MatRef A, MatRef B, float* C, Index ldc) {
    if (K == 0) {
        for (Index i = 0; i < M; ++i)
            for (Index j = 0; j < N; ++j) C[i * ldc + j] = 0.f;
        return;
    }
    thread_local std::vector<float> a_buf, b_buf;
    a_buf.resize(MC * KC);
    b_buf.resize(KC * NC);
    // Equal blocks no larger than MC/KC/NC (a 384-deep product is 2×192, not 256 + 128: a thin last block
    // would pay the C reload of a full one for half the work).
    const Index tile_columns = micro_tile_columns();  // 16, or 32 (two panels) on AVX-512
    const Index kb = balanced(K, KC, 1), mb = balanced(M, MC, MR), nb = balanced(N, NC, tile_columns);
    for (Index jc = 0; jc < N; jc += nb) {
        const Index nc = std::min(nb, N - jc);
        for (Index pc = 0; pc < K; pc += kb) {
            const Index kc = std::min(kb, K - pc);
            pack_b_panels(kc, nc, B.p + pc * B.rs + jc * B.cs, B.rs, B.cs, 1.f, b_buf.data());
            for (Index ic = 0; ic < M; ic += mb) {
                const Index mc = std::min(mb, M - ic);
                pack_a(mc, kc, MatRef{A.p + ic * A.rs + pc * A.cs, A.rs, A.cs}, a_buf.data());
                for (Index jr = 0; jr < nc; jr += tile_columns)
                    for (Index ir = 0; ir < mc; ir += MR)
                        micro_kernel(std::min(MR, mc - ir), std::min(tile_columns, nc - jr), kc, a_buf.data() + ir * kc, 1,
                                     MR, b_buf.data() + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, pc > 0);
            }
        }
    }
}

void gemm_v3_packed(Index M, Index N, Index K, MatRef A, MatRef B, float* C) { gemm_packed_ld(M, N, K, A, B, C, N); }

// Used by v4: the product for a sub-rectangle of C whose row stride is the full ldc.
void gemm_v3_packed_sub(Index M, Index N, Index K, MatRef A, MatRef B, float* C, Index ldc) {
    gemm_packed_ld(M, N, K, A, B, C, ldc);
}

}  // namespace minitx
