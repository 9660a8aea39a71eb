// The GEMM micro-kernel and the B packer (see micro_kernel.h): a scalar, an AVX2+FMA and an AVX-512 body.
// Reference: minitx/backends/numpy_ref.py::matmul
#include "matmul/micro_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "simd_avx2.h"

namespace minitx {

// A transposed B (element (p, j) at b[p + j·csb]: Wᵀ of a row-major (n, k) W) is read one row of W at a time,
// contiguously, and scattered into the panel (k × 16 floats, L1-resident). Reading the panel's 16 rows of W side
// by side instead (16 lines csb floats apart) thrashes L1 when csb is a multiple of 1024 floats (4 KiB): all 16
// lines fall in one cache set. Measured (matmul_nt, 2 threads, AVX2 EPYC, best of 30): 32×3072×768 2383 -> 1446 µs,
// 32×2048×768 1594 -> 939 µs, 32×1024×1024 1065 -> 618 µs; 32×768×3072 (3 KiB rows) unchanged.
static void pack_transposed_panel(Index k, Index nr, const float* b, Index csb, float alpha, float* dst) {
    for (Index jj = 0; jj < nr; ++jj) {
        const float* w = b + jj * csb;
        for (Index p = 0; p < k; ++p) dst[p * kPanelWidth + jj] = alpha * w[p];
    }
    for (Index jj = nr; jj < kPanelWidth; ++jj)
        for (Index p = 0; p < k; ++p) dst[p * kPanelWidth + jj] = 0.f;
}

void pack_b_panels(Index k, Index n, const float* b, Index rsb, Index csb, float alpha, float* dst) {
    for (Index j0 = 0; j0 < n; j0 += kPanelWidth) {
        const Index nr = std::min(kPanelWidth, n - j0);
        if (rsb == 1 && csb != 1) {
            pack_transposed_panel(k, nr, b + j0 * csb, csb, alpha, dst);
            dst += k * kPanelWidth;
            continue;
        }
        for (Index p = 0; p < k; ++p, dst += kPanelWidth) {
            const float* bp = b + p * rsb + j0 * csb;
            Index jj = 0;
            if (csb == 1)  // a row-major B: a contiguous copy the compiler vectorises
                for (; jj < nr; ++jj) dst[jj] = alpha * bp[jj];
            else
                for (; jj < nr; ++jj) dst[jj] = alpha * bp[jj * csb];
            for (; jj < kPanelWidth; ++jj) dst[jj] = 0.f;
        }
    }
}

// ---------------------------------------------------------------- scalar
static void micro_scalar(Index mr, Index nr, Index k, const float* a, Index rsa, Index csa, const float* panel,
                         float* c, Index ldc, bool accumulate) {
    float acc[kMicroRows][kPanelWidth] = {};
    for (Index p = 0; p < k; ++p, panel += kPanelWidth)
        for (Index r = 0; r < mr; ++r) {
            const float av = a[r * rsa + p * csa];
            for (Index j = 0; j < kPanelWidth; ++j) acc[r][j] += av * panel[j];
        }
    for (Index r = 0; r < mr; ++r)
        for (Index j = 0; j < nr; ++j) c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

// ---------------------------------------------------------------- AVX2 + FMA
// MR rows of A broadcast against the two 8-wide halves of a panel row per step p. FULL = false: only the
// first nr columns of C are read and written (masked).
template <int MR, bool FULL>
__attribute__((target("avx2,fma"))) static void micro_avx2(Index k, const float* a, Index rsa, Index csa,
                                                           const float* panel, float* c, Index ldc, Index nr,
                                                           bool accumulate) {
    __m256i m0 = _mm256_set1_epi32(-1), m1 = m0;
    if (!FULL) simd::tail_masks(nr, &m0, &m1);
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
        if (!accumulate) {
            // fetch the C tile while the k loop runs (it is written after it; ~12% at N >= 1024)
            _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kPanelWidth - 1), _MM_HINT_T0);
            c0[r] = _mm256_setzero_ps();
            c1[r] = _mm256_setzero_ps();
        } else if (FULL) {
            c0[r] = _mm256_loadu_ps(c + r * ldc);
            c1[r] = _mm256_loadu_ps(c + r * ldc + 8);
        } else {
            c0[r] = _mm256_maskload_ps(c + r * ldc, m0);
            c1[r] = _mm256_maskload_ps(c + r * ldc + 8, m1);
        }
    }
#pragma GCC unroll 4  // fewer loop-counter µops between the FMAs: ~10% on Zen 3
    for (Index p = 0; p < k; ++p) {
        const __m256 b0 = _mm256_loadu_ps(panel + p * kPanelWidth), b1 = _mm256_loadu_ps(panel + p * kPanelWidth + 8);
        const float* ap = a + p * csa;
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
            const __m256 av = _mm256_broadcast_ss(ap + r * rsa);
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
        if (FULL) {
            _mm256_storeu_ps(c + r * ldc, c0[r]);
            _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
        } else {
            _mm256_maskstore_ps(c + r * ldc, m0, c0[r]);
            _mm256_maskstore_ps(c + r * ldc + 8, m1, c1[r]);
        }
    }
}

// ---------------------------------------------------------------- AVX-512
// MR rows of A broadcast against NP panels (16 columns each, one zmm per panel row) per step p: 2·MR FMAs per
// MR broadcasts and 2 loads when NP = 2. Columns past nr are masked off in the loads and stores of C (the
// panels themselves are zero-padded, so the k loop needs no mask).
template <int MR, int NP>
__attribute__((target("avx512f,avx2,fma"))) static void micro_avx512(Index k, const float* a, Index rsa, Index csa,
                                                                     const float* panel, float* c, Index ldc,
                                                                     Index nr, bool accumulate) {
    __mmask16 mask[NP];
    for (int q = 0; q < NP; ++q) {
        const Index cols = std::clamp<Index>(nr - q * kPanelWidth, 0, kPanelWidth);
        mask[q] = __mmask16((1u << cols) - 1u);
    }
    __m512 acc[MR][NP];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r)
        for (int q = 0; q < NP; ++q)
            acc[r][q] = accumulate ? _mm512_maskz_loadu_ps(mask[q], c + r * ldc + q * kPanelWidth) : _mm512_setzero_ps();
    const Index panel_stride = k * kPanelWidth;
#pragma GCC unroll 4
    for (Index p = 0; p < k; ++p) {
        __m512 b[NP];
        for (int q = 0; q < NP; ++q) b[q] = _mm512_loadu_ps(panel + q * panel_stride + p * kPanelWidth);
        const float* ap = a + p * csa;
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
            const __m512 av = _mm512_set1_ps(ap[r * rsa]);
            for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_fmadd_ps(av, b[q], acc[r][q]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r)
        for (int q = 0; q < NP; ++q) _mm512_mask_storeu_ps(c + r * ldc + q * kPanelWidth, mask[q], acc[r][q]);
}

// ---------------------------------------------------------------- dispatch
Index micro_tile_columns() { return current_isa() == Isa::Avx512 ? 2 * kPanelWidth : kPanelWidth; }

// body(std::integral_constant<int, MR>()) for MR = mr in [1, kMicroRows]: the SIMD bodies are templates on their
// row count, so their loops over the rows unroll into registers.
template <typename Body>
static void with_row_count(Index mr, Body&& body) {
    switch (mr) {
        case 6: return body(std::integral_constant<int, 6>());
        case 5: return body(std::integral_constant<int, 5>());
        case 4: return body(std::integral_constant<int, 4>());
        case 3: return body(std::integral_constant<int, 3>());
        case 2: return body(std::integral_constant<int, 2>());
        default: return body(std::integral_constant<int, 1>());
    }
}

void micro_kernel(Index mr, Index nr, Index k, const float* a, Index rsa, Index csa, const float* panel, float* c,
                  Index ldc, bool accumulate) {
    switch (current_isa()) {
        case Isa::Scalar: return micro_scalar(mr, nr, k, a, rsa, csa, panel, c, ldc, accumulate);
        case Isa::Avx2:
            return with_row_count(mr, [&](auto rows) {
                constexpr int MR = decltype(rows)::value;
                if (nr == kPanelWidth) return micro_avx2<MR, true>(k, a, rsa, csa, panel, c, ldc, nr, accumulate);
                micro_avx2<MR, false>(k, a, rsa, csa, panel, c, ldc, nr, accumulate);
            });
        case Isa::Avx512:
            return with_row_count(mr, [&](auto rows) {
                constexpr int MR = decltype(rows)::value;
                if (nr > kPanelWidth) return micro_avx512<MR, 2>(k, a, rsa, csa, panel, c, ldc, nr, accumulate);
                micro_avx512<MR, 1>(k, a, rsa, csa, panel, c, ldc, nr, accumulate);
            });
    }
}

void gemm_tile_packed_b(Index m, Index n, Index k, const float* a, Index rsa, Index csa, const float* bp, float* c,
                        Index ldc, bool accumulate) {
    const Index cols = micro_tile_columns();
    for (Index j0 = 0; j0 < n; j0 += cols)
        for (Index i0 = 0; i0 < m; i0 += kMicroRows)
            micro_kernel(std::min(kMicroRows, m - i0), std::min(cols, n - j0), k, a + i0 * rsa, rsa, csa,
                         bp + j0 * k, c + i0 * ldc + j0, ldc, accumulate);
}

}  // namespace minitx
