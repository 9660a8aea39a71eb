// The matmul ladder: C (M×N, row-major, ldc = N) = A (M×K) · B (K×N).
// Operands are read through (row stride, column stride), so Aᵀ·B and A·Bᵀ are the same kernels with
// swapped strides: no transpose is ever materialised.
// Reference: minitx/backends/numpy_ref.py::matmul
#pragma once
#include "common.h"

namespace minitx {

struct MatRef {          // element (i, j) is p[i * rs + j * cs]
    const float* p;
    Index rs, cs;
    float at(Index i, Index j) const { return p[i * rs + j * cs]; }
};

using GemmFn = void (*)(Index M, Index N, Index K, MatRef A, MatRef B, float* C);

void gemm_v0_naive(Index M, Index N, Index K, MatRef A, MatRef B, float* C);
void gemm_v1_loop_order(Index M, Index N, Index K, MatRef A, MatRef B, float* C);
void gemm_v2_blocked(Index M, Index N, Index K, MatRef A, MatRef B, float* C);
void gemm_v3_packed(Index M, Index N, Index K, MatRef A, MatRef B, float* C);
void gemm_v4_threads(Index M, Index N, Index K, MatRef A, MatRef B, float* C);

// Skinny products (csrc/matmul/skinny.cpp): M <= kSkinnyMaxRows, each weight read once, in place, no packing.
// They fit when B is row-major (B.cs = 1: the nn form) or stored (N, K) row-major with A row-major (B.rs = 1,
// A.cs = 1: the nt form, x @ Wᵀ). v4 takes this path for them; `threads` splits N over the pool.
inline constexpr Index kSkinnyMaxRows = 16;
bool skinny_fits(Index M, MatRef A, MatRef B);
void gemm_skinny(Index M, Index N, Index K, MatRef A, MatRef B, float* C, bool threads);

// Products with a few more rows (csrc/matmul/few_rows.cpp): kSkinnyMaxRows < M <= kFewRowsMax, any strides,
// computed as Cᵀ = Bᵀ·Aᵀ with the weights read in place (no packing of B). v4 takes this path for them.
inline constexpr Index kFewRowsMax = 64;
bool few_rows_fits(Index M);
void gemm_few_rows(Index M, Index N, Index K, MatRef A, MatRef B, float* C, bool threads);

constexpr int kMatmulVersions = 5;
constexpr int kDefaultMatmulVersion = 4;

// A batch of products C[b] = A[b]·B[b]; a_off/b_off give each product's element offset (broadcast
// batch axes repeat an offset). v4 spreads whole products over threads when there are enough.
void gemm_batched(int version, Index batch, Index M, Index N, Index K, const float* A, const Index* a_off, Index rsa,
                  Index csa, const float* B, const Index* b_off, Index rsb, Index csb, float* C);

}  // namespace minitx
