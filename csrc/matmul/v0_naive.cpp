// Rung 0: the textbook triple loop, C[i][j] = sum_k A[i][k] B[k][j].
// The inner loop walks B down a column (stride N): one cache miss per multiply-add once B outgrows cache.
// Speed: benchmarks/results/matmul.json.
// Reference: minitx/backends/numpy_ref.py::matmul
#include "matmul/matmul.h"

namespace minitx {

void gemm_v0_naive(Index M, Index N, Index K, MatRef A, MatRef B, float* C) {
    for (Index i = 0; i < M; ++i)
        for (Index j = 0; j < N; ++j) {
            float acc = 0.f;
            for (Index k = 0; k < K; ++k) acc += A.at(i, k) * B.at(k, j);
            C[i * N + j] = acc;
        }
}

}  // namespace minitx
