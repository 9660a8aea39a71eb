// Rung 2: cache blocking. Adds over v1: C is computed in MB×NB tiles, summing over KB-long slices of K,
// so the slice of B a tile needs (KB×NB floats = 128 KiB) stays in L2 while all MB rows of A use it.
// Speed: benchmarks/results/matmul.json.
// Reference: minitx/backends/numpy_ref.py::matmul
#include <algorithm>

#include "matmul/matmul.h"

namespace minitx {

static constexpr Index MB = 64, NB = 256, KB = 128;

void gemm_v2_blocked(Index M, Index N, Index K, MatRef A, MatRef B, float* C) {
    for (Index i = 0; i < M * N; ++i) C[i] = 0.f;
    // BEGIN SOLUTION hint="loop over NB-wide column panels j0, then KB-long k slices k0, then MB-tall row blocks i0 (clip each end with std::min); inside a tile run v1's i-k-j order: c[i*N + j] += A.at(i, k) * B(k, j), with B(k, j) = B.p[k * B.rs + j * B.cs]"
    for (Index j0 = 0; j0 < N; j0 += NB) {
        const Index j1 = std::min(N, j0 + NB);
        for (Index k0 = 0; k0 < K; k0 += KB) {
            const Index k1 = std::min(K, k0 + KB);
            for (Index i0 = 0; i0 < M; i0 += MB) {
                const Index i1 = std::min(M, i0 + MB);
                for (Index i = i0; i < i1; ++i) {
                    float* c = C + i * N;
                    for (Index k = k0; k < k1; ++k) {
                        const float a = A.at(i, k);
                        const float* b = B.p + k * B.rs;
                        if (B.cs == 1)
                            for (Index j = j0; j < j1; ++j) c[j] += a * b[j];
                        else
                            for (Index j = j0; j < j1; ++j) c[j] += a * b[j * B.cs];
                    }
                }
            }
        }
    }
    // END SOLUTION
}

}  // namespace minitx
