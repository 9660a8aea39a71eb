// Rung 1: loop order i-k-j. Adds over v0: the inner loop now streams a row of B and a row of C with
// unit stride (for row-major B), so the compiler vectorises it and every cache line is fully used.
// Speed: benchmarks/results/matmul.json.
// Reference: minitx/backends/numpy_ref.py::matmul
#include "matmul/matmul.h"

namespace minitx {

void gemm_v1_loop_order(Index M, Index N, Index K, MatRef A, MatRef B, float* C) {
    for (Index i = 0; i < M; ++i) {
        float* c = C + i * N;
        for (Index j = 0; j < N; ++j) c[j] = 0.f;
        for (Index k = 0; k < K; ++k) {
            const float a = A.at(i, k);
            const float* b = B.p + k * B.rs;
            if (B.cs == 1)
                for (Index j = 0; j < N; ++j) c[j] += a * b[j];
            else
                for (Index j = 0; j < N; ++j) c[j] += a * b[j * B.cs];
        }
    }
}

}  // namespace minitx
