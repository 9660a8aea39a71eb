// Products with a few rows, kSkinnyMaxRows < M <= kFewRowsMax: a decoder step of a beam search or a batch
// (batch × beams rows) through a weight matrix. The packed GEMM (v3) copies all of B into panels on every call,
// and with few rows of A each packed weight is then used only M times: the copy costs as much as the product
// (GPT-2 LM head, 32×768 · (50257×768)ᵀ: 31.7 ms = 78 GF/s on a 2-core Xeon with AVX-512).
// Here the operands swap roles:  Cᵀ (N×M) = Bᵀ (N×K) · Aᵀ (K×M).
// The small Aᵀ is packed into micro-kernel panels once per call (K·M floats, per block of kKBlock values of K),
// and the rows of Bᵀ — the weights, read in place through their strides — are the micro-kernel's broadcast
// operand: each weight is read from memory once and used M times from a register. Cᵀ is computed in tiles of
// kTileRows weight rows (in L1) and written transposed into C; threads take tiles.
// Speed: benchmarks/results/matmul.json ("skinny"). Reference: minitx/backends/numpy_ref.py::matmul
#include <algorithm>
#include <vector>

#include "matmul/matmul.h"
#include "matmul/micro_kernel.h"

namespace minitx {

// Values of K per packed block of Aᵀ: 256 × 32 floats (32 KB) is the micro-kernel's panel pair, in L1.
static constexpr Index kKBlock = 256;
// Weight rows (columns of C) per tile of Cᵀ: kTileRows × kFewRowsMax floats (24 KB) on the stack.
static constexpr Index kTileRows = 96;
// Threads pay from this many multiply-adds on (waking a worker costs ~50-200 µs).
static constexpr double kParallelMacs = 1 << 20;

bool few_rows_fits(Index M) { return M > kSkinnyMaxRows && M <= kFewRowsMax; }

// Cᵀ rows [n0, n0 + rows) = Bᵀ rows · Aᵀ, written into C's columns [n0, n0 + rows).
static void few_rows_tile(Index M, Index N, Index K, MatRef Bt, const float* at_panels, Index m_pad, Index n0,
                          Index rows, float* C) {
    float ct[kTileRows * kFewRowsMax];  // Cᵀ tile, row stride M
    for (Index pc = 0; pc < K; pc += kKBlock)
        gemm_tile_packed_b(rows, M, std::min(kKBlock, K - pc), Bt.p + n0 * Bt.rs + pc * Bt.cs, Bt.rs, Bt.cs,
                           at_panels + pc * m_pad, ct, M, pc > 0);
    for (Index i = 0; i < M; ++i)
        for (Index r = 0; r < rows; ++r) C[i * N + n0 + r] = ct[r * M + i];
}

void gemm_few_rows(Index M, Index N, Index K, MatRef A, MatRef B, float* C, bool threads) {
    if (N == 0) return;
    if (K == 0) return std::fill(C, C + M * N, 0.f);
    const Index m_pad = (M + kPanelWidth - 1) / kPanelWidth * kPanelWidth;
    thread_local std::vector<float> at_panels;  // kept between calls: no fresh pages to fault in every step
    at_panels.resize(K * m_pad);
    for (Index pc = 0; pc < K; pc += kKBlock)  // Aᵀ: element (p, i) = A(i, p)
        pack_b_panels(std::min(kKBlock, K - pc), M, A.p + pc * A.cs, A.cs, A.rs, 1.f, at_panels.data() + pc * m_pad);
    const MatRef Bt{B.p, B.cs, B.rs};  // element (n, p) of Bᵀ = B(p, n)
    const float* panels = at_panels.data();
    const Index n_tiles = (N + kTileRows - 1) / kTileRows;
    const bool parallel = threads && double(M) * double(N) * double(K) >= kParallelMacs;
    parallel_for(n_tiles, [&](Index t) {
        const Index n0 = t * kTileRows;
        few_rows_tile(M, N, K, Bt, panels, m_pad, n0, std::min(kTileRows, N - n0), C);
    }, parallel ? 0 : 1);
}

}  // namespace minitx
