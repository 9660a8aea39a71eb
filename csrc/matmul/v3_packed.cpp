// Rung 3: packed panels + a SIMD register-tiled micro-kernel (Goto & van de Geijn, 2008; the BLIS loops).
// Adds over v2:
//   * packing: a KC×NC block of B and an MC×KC block of A are copied into contiguous micro-panels
//     (NR columns / MR rows interleaved by k), zero-padded at the edges, so the micro-kernel streams
//     both with unit stride and no TLB misses; transposed operands cost nothing extra (the pack reads
//     any strides);
//   * the micro-kernel keeps an MR×NR tile of C in registers for the whole K loop: per k it loads one
//     row of the B panel and broadcasts MR values of A: MR·NR/width FMAs per MR + NR/width loads.
//     AVX-512: 6×32 (12 zmm accumulators), AVX2+FMA: 6×16 (12 ymm), scalar: 6×16 plain C++.
// Chosen at run time from current_isa() (per-function target attributes; no -march).
// The AVX2 kernel prefetches its C tile before the K loop (C is read/written after it, ~12% at N ≥ 1024)
// and unrolls K by 4; blocks are balanced (K = 384 is 2×192, not 256 + 128).
// Speed: benchmarks/results/matmul.json.
// Reference: minitx/backends/numpy_ref.py::matmul
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "matmul/matmul.h"

namespace minitx {

// Block sizes for Zen 3 / Skylake-class caches (32 KB L1d, 512 KB-1 MB L2 per core): a KC×NR micro-panel
// of B (16 KB) stays in L1 across the MC/MR micro-kernels of one block, the MC×KC block of A (120 KB)
// in L2, the KC×NC block of B (2 MB) in L3. Measured on the 2-core EPYC: MC 72-240, KC 256-512 are
// within noise of each other; the loop order and the pool (v4) matter far more.
static constexpr Index MR = 6, MC = 120, KC = 256, NC = 2048;

using MicroKernel = void (*)(Index kc, const float* Ap, const float* Bp, float* C, Index ldc, Index mr, Index nr,
                             bool accumulate);

// Writes an MR×nr_full tile held in `tile` (row-major, stride nr_full) to the mr×nr corner of C.
static void store_partial(const float* tile, Index nr_full, float* C, Index ldc, Index mr, Index nr, bool accumulate) {
    for (Index r = 0; r < mr; ++r)
        for (Index c = 0; c < nr; ++c) {
            float v = tile[r * nr_full + c];
            C[r * ldc + c] = accumulate ? C[r * ldc + c] + v : v;
        }
}

// ---------------------------------------------------------------- scalar 6×16
static void micro_scalar(Index kc, const float* Ap, const float* Bp, float* C, Index ldc, Index mr, Index nr,
                         bool accumulate) {
    constexpr Index NR = 16;
    float acc[MR][NR] = {};
    for (Index p = 0; p < kc; ++p, Ap += MR, Bp += NR)
        for (Index r = 0; r < MR; ++r)
            for (Index c = 0; c < NR; ++c) acc[r][c] += Ap[r] * Bp[c];
    store_partial(&acc[0][0], NR, C, ldc, mr, nr, accumulate);
}

// ---------------------------------------------------------------- AVX2 + FMA 6×16
__attribute__((target("avx2,fma"))) static void micro_avx2(Index kc, const float* Ap, const float* Bp, float* C,
                                                           Index ldc, Index mr, Index nr, bool accumulate) {
    constexpr Index NR = 16;
    for (Index r = 0; r < mr; ++r) {  // fetch the C tile while the K loop runs (it is read or written after it)
        _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + NR - 1), _MM_HINT_T0);
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4  // fewer loop-counter µops between the FMAs: ~10% on Zen 3
    for (Index p = 0; p < kc; ++p, Ap += MR, Bp += NR) {
        const __m256 b0 = _mm256_loadu_ps(Bp), b1 = _mm256_loadu_ps(Bp + 8);
        __m256 a = _mm256_broadcast_ss(Ap + 0);
        c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(Ap + 1);
        c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(Ap + 2);
        c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(Ap + 3);
        c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(Ap + 4);
        c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(Ap + 5);
        c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (mr == MR && nr == NR) {
        for (Index r = 0; r < MR; ++r) {
            float* c = C + r * ldc;
            __m256 v0 = rows[r][0], v1 = rows[r][1];
            if (accumulate) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8));
            }
            _mm256_storeu_ps(c, v0);
            _mm256_storeu_ps(c + 8, v1);
        }
        return;
    }
    alignas(32) float tile[MR * NR];
    for (Index r = 0; r < MR; ++r) {
        _mm256_store_ps(tile + r * NR, rows[r][0]);
        _mm256_store_ps(tile + r * NR + 8, rows[r][1]);
    }
    store_partial(tile, NR, C, ldc, mr, nr, accumulate);
}

// ---------------------------------------------------------------- AVX-512 6×32
__attribute__((target("avx512f"))) static void micro_avx512(Index kc, const float* Ap, const float* Bp, float* C,
                                                            Index ldc, Index mr, Index nr, bool accumulate) {
    constexpr Index NR = 32;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (Index p = 0; p < kc; ++p, Ap += MR, Bp += NR) {
        const __m512 b0 = _mm512_loadu_ps(Bp), b1 = _mm512_loadu_ps(Bp + 16);
        __m512 a = _mm512_set1_ps(Ap[0]);
        c00 = _mm512_fmadd_ps(a, b0, c00); c01 = _mm512_fmadd_ps(a, b1, c01);
        a = _mm512_set1_ps(Ap[1]);
        c10 = _mm512_fmadd_ps(a, b0, c10); c11 = _mm512_fmadd_ps(a, b1, c11);
        a = _mm512_set1_ps(Ap[2]);
        c20 = _mm512_fmadd_ps(a, b0, c20); c21 = _mm512_fmadd_ps(a, b1, c21);
        a = _mm512_set1_ps(Ap[3]);
        c30 = _mm512_fmadd_ps(a, b0, c30); c31 = _mm512_fmadd_ps(a, b1, c31);
        a = _mm512_set1_ps(Ap[4]);
        c40 = _mm512_fmadd_ps(a, b0, c40); c41 = _mm512_fmadd_ps(a, b1, c41);
        a = _mm512_set1_ps(Ap[5]);
        c50 = _mm512_fmadd_ps(a, b0, c50); c51 = _mm512_fmadd_ps(a, b1, c51);
    }
    alignas(64) float tile[MR * NR];
    const __m512 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (Index r = 0; r < MR; ++r) {
        _mm512_store_ps(tile + r * NR, rows[r][0]);
        _mm512_store_ps(tile + r * NR + 16, rows[r][1]);
    }
    if (mr == MR && nr == NR && !accumulate) {
        for (Index r = 0; r < MR; ++r)
            for (Index c = 0; c < NR; c += 16) _mm512_storeu_ps(C + r * ldc + c, _mm512_load_ps(tile + r * NR + c));
        return;
    }
    store_partial(tile, NR, C, ldc, mr, nr, accumulate);
}

// ---------------------------------------------------------------- packing
// B block (kc×nc) -> panels of NR columns: Bp[panel][p][c] = B(p, j + c), zero beyond nc.
static void pack_b(Index kc, Index nc, Index NR, MatRef B, float* Bp) {
    for (Index j = 0; j < nc; j += NR) {
        const Index nr = std::min(NR, nc - j);
        for (Index p = 0; p < kc; ++p, Bp += NR) {
            const float* b = B.p + p * B.rs + j * B.cs;
            if (B.cs == 1)
                for (Index c = 0; c < nr; ++c) Bp[c] = b[c];
            else
                for (Index c = 0; c < nr; ++c) Bp[c] = b[c * B.cs];
            for (Index c = nr; c < NR; ++c) Bp[c] = 0.f;
        }
    }
}

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
    const Isa isa = current_isa();
    const MicroKernel micro = isa == Isa::Avx512 ? micro_avx512 : isa == Isa::Avx2 ? micro_avx2 : micro_scalar;
    const Index NR = isa == Isa::Avx512 ? 32 : 16;
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
    const Index kb = balanced(K, KC, 1), mb = balanced(M, MC, MR), nb = balanced(N, NC, NR);
    for (Index jc = 0; jc < N; jc += nb) {
        const Index nc = std::min(nb, N - jc);
        for (Index pc = 0; pc < K; pc += kb) {
            const Index kc = std::min(kb, K - pc);
            pack_b(kc, nc, NR, MatRef{B.p + pc * B.rs + jc * B.cs, B.rs, B.cs}, b_buf.data());
            for (Index ic = 0; ic < M; ic += mb) {
                const Index mc = std::min(mb, M - ic);
                pack_a(mc, kc, MatRef{A.p + ic * A.rs + pc * A.cs, A.rs, A.cs}, a_buf.data());
                for (Index jr = 0; jr < nc; jr += NR)
                    for (Index ir = 0; ir < mc; ir += MR)
                        micro(kc, a_buf.data() + ir * kc, b_buf.data() + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,
                              std::min(MR, mc - ir), std::min(NR, nc - jr), pc > 0);
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
