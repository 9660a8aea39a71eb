// Skinny products, C (M×N) = A (M×K) · B with M <= kSkinnyMaxRows (16): a decoder's step with a KV cache
// (one token, M = 1, or one per sequence of a batch or beam) through a weight matrix.
// v3/v4 pack B on every call: with so few rows each weight is used only M times, so the copy costs as much
// as the product. Here every weight is read once, in place, left to right:
//   nn form, B (K, N) row-major (B.cs = 1): a row of C is a sum of rows of B, C[i, :] = Σ_p a[i, p] · B[p, :].
//     Per step, 8 rows of B (4 when M > 1) are read side by side and added, times a[i, p] broadcast, into a
//     contiguous tile of C columns (16 KB, in L1; C's own rows, N floats apart, would share cache sets),
//     two rows of C at a time, so each load of B feeds 2 FMAs and the tile costs one load and one store
//     per 4 FMAs. The rows of B stay in L1 for the rows of C after the first.
//   nt form, B stored (N, K) row-major, as Linear's weight in x @ Wᵀ (B.rs = 1, A.cs = 1): dot products,
//     C[i, n] = Σ_p A[i, p] · W[n, p], of 2 rows of A with 4 rows of W (1 with 8 for M = 1) in 8 ymm
//     accumulators, vectorised over K and summed across lanes at the end (AVX-512: 4 rows of A with 4 rows of
//     W in 16 zmm). The block of 8 rows of W stays in L1 for the next rows of A; the rows of A (M·K floats)
//     stay in L1/L2.
// Threads split N into chunks when the weights are large enough to pay for waking a worker.
// No zero is skipped: a NaN or inf in A or B reaches every output it touches, as in NumPy.
// Speed: benchmarks/results/matmul.json ("skinny").
// Reference: minitx/backends/numpy_ref.py::matmul / matmul_nt
#include <immintrin.h>

#include <algorithm>

#include "matmul/matmul.h"
#include "simd_avx2.h"

namespace minitx {

// Threads pay from 1 MB of weights on (a sleeping worker takes ~50-200 µs to wake).
static constexpr Index kParallelWeights = Index(1) << 18;
// The nn form's tile of C: kTileFloats (16 KB) at most, so kTileFloats / M columns.
static constexpr Index kTileFloats = 4096;
// The nt form's rows of W per block: all 8 against one row of A, or 4 at a time against two rows of A.
static constexpr Index kWRows = 8;

bool skinny_fits(Index M, MatRef A, MatRef B) {
    return M <= kSkinnyMaxRows && (B.cs == 1 || (B.rs == 1 && A.cs == 1));
}

// ---------------------------------------------------------------- scalar
static void nn_scalar(Index M, Index N, Index K, MatRef A, MatRef B, float* C, Index ldc) {
    for (Index i = 0; i < M; ++i) {
        float* c = C + i * ldc;
        std::fill(c, c + N, 0.f);
        for (Index p = 0; p < K; ++p) {
            const float av = A.at(i, p), *b = B.p + p * B.rs;
            for (Index j = 0; j < N; ++j) c[j] += av * b[j];
        }
    }
}

static void nt_scalar(Index M, Index N, Index K, MatRef A, MatRef B, float* C, Index ldc) {
    for (Index i = 0; i < M; ++i)
        for (Index n = 0; n < N; ++n) {
            const float *a = A.p + i * A.rs, *w = B.p + n * B.cs;
            float s = 0.f;
            for (Index p = 0; p < K; ++p) s += a[p] * w[p];
            C[i * ldc + n] = s;
        }
}

// ---------------------------------------------------------------- AVX2 + FMA, nn
// Tile rows [i, i + MR) (each W floats) += A[i:i+MR, p:p+R] · B[p:p+R, 0:W), b = &B[p, 0].
template <int MR, int R>
__attribute__((target("avx2,fma"))) static inline void nn_rows(Index W, MatRef A, Index i, Index p, const float* b,
                                                               Index ldb, float* tile) {
    float as[MR][R];
    __m256 av[MR][R];
    for (int m = 0; m < MR; ++m)
        for (int r = 0; r < R; ++r) av[m][r] = _mm256_set1_ps(as[m][r] = A.at(i + m, p + r));
    float* t = tile + i * W;
    Index j = 0;
    for (; j + 8 <= W; j += 8) {
        __m256 c[MR];
        for (int m = 0; m < MR; ++m) c[m] = _mm256_loadu_ps(t + m * W + j);
        for (int r = 0; r < R; ++r) {
            const __m256 bv = _mm256_loadu_ps(b + r * ldb + j);
            for (int m = 0; m < MR; ++m) c[m] = _mm256_fmadd_ps(av[m][r], bv, c[m]);
        }
        for (int m = 0; m < MR; ++m) _mm256_storeu_ps(t + m * W + j, c[m]);
    }
    for (; j < W; ++j)
        for (int m = 0; m < MR; ++m)
            for (int r = 0; r < R; ++r) t[m * W + j] += as[m][r] * b[r * ldb + j];
}

// Rows p .. p + R of B into every row of the tile, two rows of C at a time.
template <int R>
__attribute__((target("avx2,fma"))) static inline void nn_step(Index M, Index W, MatRef A, Index p, const float* b,
                                                               Index ldb, float* tile) {
    Index i = 0;
    for (; i + 2 <= M; i += 2) nn_rows<2, R>(W, A, i, p, b, ldb, tile);
    if (i < M) nn_rows<1, R>(W, A, i, p, b, ldb, tile);
}

// C[:, 0:W) = A · B[:, 0:W), W <= kTileFloats / M, summed in `tile`.
__attribute__((target("avx2,fma"))) static void nn_columns_avx2(Index M, Index W, Index K, MatRef A, MatRef B,
                                                                float* tile, float* C, Index ldc) {
    std::fill(tile, tile + M * W, 0.f);
    Index p = 0;
    if (M == 1)  // one row of C: 8 rows of B per step, each tile load and store shared by 8 FMAs
        for (; p + 8 <= K; p += 8) nn_rows<1, 8>(W, A, 0, p, B.p + p * B.rs, B.rs, tile);
    for (; p + 4 <= K; p += 4) nn_step<4>(M, W, A, p, B.p + p * B.rs, B.rs, tile);
    for (; p < K; ++p) nn_step<1>(M, W, A, p, B.p + p * B.rs, B.rs, tile);
    for (Index i = 0; i < M; ++i) std::copy(tile + i * W, tile + (i + 1) * W, C + i * ldc);
}

// The NW row pointers of a block of nw <= NW rows of W (row stride ldw); the rows past nw repeat the last row
// (computed and dropped, so every load stays inside W).
template <int NW>
static inline void w_block_rows(const float* w, Index ldw, Index nw, const float* (&wr)[NW]) {
    for (int q = 0; q < NW; ++q) wr[q] = w + std::min<Index>(q, nw - 1) * ldw;
}

// ---------------------------------------------------------------- AVX2 + FMA, nt
// The 4 sums of x0..x3 (each over its 8 lanes), in one vector.
__attribute__((target("avx2,fma"))) static inline __m128 hsum4(__m256 x0, __m256 x1, __m256 x2, __m256 x3) {
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(x0, x1), _mm256_hadd_ps(x2, x3));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// One step of nt_block: 8 values of K (the lanes of `mask` only when MASKED; masked-off lanes load 0 from A
// and W alike).
template <int MR, int NW, bool MASKED>
__attribute__((target("avx2,fma"))) static inline void nt_step(__m256 (&acc)[MR][NW], const float* a, Index lda,
                                                               const float* const (&w)[NW], Index p, __m256i mask) {
    __m256 av[MR];
    for (int m = 0; m < MR; ++m)
        av[m] = MASKED ? _mm256_maskload_ps(a + m * lda + p, mask) : _mm256_loadu_ps(a + m * lda + p);
    for (int q = 0; q < NW; ++q) {
        const __m256 wv = MASKED ? _mm256_maskload_ps(w[q] + p, mask) : _mm256_loadu_ps(w[q] + p);
        for (int m = 0; m < MR; ++m) acc[m][q] = _mm256_fmadd_ps(av[m], wv, acc[m][q]);
    }
}

// C[0:MR, 0:nw) = A[0:MR, :] · W[0:nw, :]ᵀ, nw <= NW (w_block_rows).
template <int MR, int NW>
__attribute__((target("avx2,fma"))) static void nt_block(Index K, const float* a, Index lda, const float* w,
                                                         Index ldw, Index nw, float* c, Index ldc) {
    const float* wr[NW];
    w_block_rows(w, ldw, nw, wr);
    __m256 acc[MR][NW] = {};
    Index p = 0;
    for (; p + 8 <= K; p += 8) nt_step<MR, NW, false>(acc, a, lda, wr, p, __m256i());
    if (p < K) nt_step<MR, NW, true>(acc, a, lda, wr, p, simd::lanes_below(K - p));
    for (int m = 0; m < MR; ++m) {
        alignas(16) float sums[NW];
        for (int q = 0; q < NW; q += 4)
            _mm_store_ps(sums + q, hsum4(acc[m][q], acc[m][q + 1], acc[m][q + 2], acc[m][q + 3]));
        std::copy(sums, sums + std::min<Index>(nw, NW), c + m * ldc);
    }
}

// C[:, 0:nw) = A · W[0:nw, :]ᵀ for one block of nw <= kWRows rows of W.
__attribute__((target("avx2,fma"))) static void nt_rows_avx2(Index M, Index nw, Index K, MatRef A, const float* w,
                                                             Index ldw, float* C, Index ldc) {
    if (M == 1) return nt_block<1, 8>(K, A.p, A.rs, w, ldw, nw, C, ldc);
    for (Index i = 0; i < M; i += 2)
        for (Index q = 0; q < nw; q += 4) {
            const float* a = A.p + i * A.rs;
            float* c = C + i * ldc + q;
            if (i + 1 < M) nt_block<2, 4>(K, a, A.rs, w + q * ldw, ldw, std::min<Index>(4, nw - q), c, ldc);
            else nt_block<1, 4>(K, a, A.rs, w + q * ldw, ldw, std::min<Index>(4, nw - q), c, ldc);
        }
}

// ---------------------------------------------------------------- AVX-512, nt
// The same dot products, 16 values of K per step, MR rows of A with 4 rows of W in 4·MR zmm accumulators (M = 1:
// one row against 8): 8 loads per 16 FMAs at MR = 4, where the AVX2 body (2 × 4 in 8 ymm, all 16 registers there
// are) does 6 loads per 8 FMAs of half the width: with a few rows the AVX2 body is bound by its loads.
template <int MR, int NW, bool MASKED>
__attribute__((target("avx512f,avx2,fma"))) static inline void nt_step512(__m512 (&acc)[MR][NW], const float* a,
                                                                          Index lda, const float* const (&w)[NW],
                                                                          Index p, __mmask16 mask) {
    __m512 av[MR];
    for (int m = 0; m < MR; ++m)
        av[m] = MASKED ? _mm512_maskz_loadu_ps(mask, a + m * lda + p) : _mm512_loadu_ps(a + m * lda + p);
    for (int q = 0; q < NW; ++q) {
        const __m512 wv = MASKED ? _mm512_maskz_loadu_ps(mask, w[q] + p) : _mm512_loadu_ps(w[q] + p);
        for (int m = 0; m < MR; ++m) acc[m][q] = _mm512_fmadd_ps(av[m], wv, acc[m][q]);
    }
}

// The sum of the 16 lanes, through memory: GCC 12's reduce/extract/cast intrinsics warn of an uninitialised value
// inside its own header (once per block of outputs, the store costs nothing measurable).
__attribute__((target("avx512f,avx2,fma"))) static inline float hsum512(__m512 x) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, x);
    return simd::hsum256(_mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8)));
}

// C[0:MR, 0:nw) = A[0:MR, :] · W[0:nw, :]ᵀ, nw <= NW (w_block_rows).
template <int MR, int NW>
__attribute__((target("avx512f,avx2,fma"))) static void nt_block512(Index K, const float* a, Index lda, const float* w,
                                                                    Index ldw, Index nw, float* c, Index ldc) {
    const float* wr[NW];
    w_block_rows(w, ldw, nw, wr);
    __m512 acc[MR][NW] = {};
    Index p = 0;
    for (; p + 16 <= K; p += 16) nt_step512<MR, NW, false>(acc, a, lda, wr, p, 0);
    if (p < K) nt_step512<MR, NW, true>(acc, a, lda, wr, p, __mmask16((1u << (K - p)) - 1u));
    for (int m = 0; m < MR; ++m)
        for (int q = 0; q < nw; ++q) c[m * ldc + q] = hsum512(acc[m][q]);
}

// C[:, 0:nw) = A · W[0:nw, :]ᵀ for one block of nw <= kWRows rows of W: 4 rows of A at a time.
__attribute__((target("avx512f,avx2,fma"))) static void nt_rows_avx512(Index M, Index nw, Index K, MatRef A,
                                                                       const float* w, Index ldw, float* C,
                                                                       Index ldc) {
    if (M == 1) return nt_block512<1, 8>(K, A.p, A.rs, w, ldw, nw, C, ldc);
    for (Index i = 0; i < M; i += 4)
        for (Index q = 0; q < nw; q += 4) {
            const float* a = A.p + i * A.rs;
            const Index n = std::min<Index>(4, nw - q);
            float* c = C + i * ldc + q;
            switch (std::min<Index>(4, M - i)) {
                case 4: nt_block512<4, 4>(K, a, A.rs, w + q * ldw, ldw, n, c, ldc); break;
                case 3: nt_block512<3, 4>(K, a, A.rs, w + q * ldw, ldw, n, c, ldc); break;
                case 2: nt_block512<2, 4>(K, a, A.rs, w + q * ldw, ldw, n, c, ldc); break;
                default: nt_block512<1, 4>(K, a, A.rs, w + q * ldw, ldw, n, c, ldc);
            }
        }
}

// ---------------------------------------------------------------- dispatch
// All M rows of C, columns [0, N).
static void skinny_columns(Index M, Index N, Index K, MatRef A, MatRef B, float* C, Index ldc) {
    const bool nn = B.cs == 1;
    if (current_isa() == Isa::Scalar) return nn ? nn_scalar(M, N, K, A, B, C, ldc) : nt_scalar(M, N, K, A, B, C, ldc);
    if (nn) {
        alignas(32) float tile[kTileFloats];
        const Index width = kTileFloats / M / 8 * 8;
        for (Index j = 0; j < N; j += width)
            nn_columns_avx2(M, std::min(width, N - j), K, A, MatRef{B.p + j, B.rs, 1}, tile, C + j, ldc);
        return;
    }
    const auto nt_rows = current_isa() == Isa::Avx512 ? nt_rows_avx512 : nt_rows_avx2;
    for (Index j = 0; j < N; j += kWRows) nt_rows(M, std::min(kWRows, N - j), K, A, B.p + j * B.cs, B.cs, C + j, ldc);
}

void gemm_skinny(Index M, Index N, Index K, MatRef A, MatRef B, float* C, bool threads) {
    if (M == 0 || N == 0) return;
    // Up to 4 chunks per thread, each at least kParallelWeights, taken from the pool's shared counter: a
    // thread that the OS holds back (another process on its core) leaves its later chunks to the others.
    const Index T = threads && K * N >= kParallelWeights ? num_threads() : 1;
    const Index tasks = T == 1 ? 1 : std::max(T, std::min(4 * T, K * N / kParallelWeights));
    const Index align = 64, chunk = ((N + tasks - 1) / tasks + align - 1) / align * align;
    const Index n_chunks = (N + chunk - 1) / chunk;
    parallel_for(n_chunks, [&](Index t) {  // column j of C: column j of B (nn), row j of W (nt)
        const Index lo = t * chunk, len = std::min(chunk, N - lo);
        skinny_columns(M, len, K, A, MatRef{B.p + lo * B.cs, B.rs, B.cs}, C + lo, N);
    });
}

}  // namespace minitx
