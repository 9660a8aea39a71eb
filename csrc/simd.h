// Small vector helpers shared by the fused kernels, each with an AVX2+FMA body and a portable scalar
// body, picked at run time from current_isa(). Compiled without -march: the AVX2 bodies use
// per-function __attribute__((target("avx2,fma"))).
#pragma once
#include "common.h"

namespace minitx::simd {

float dot(const float* a, const float* b, Index n);        // sum_i a_i b_i
void axpy(float* y, float alpha, const float* x, Index n);  // y += alpha x
void scale(float* y, float alpha, Index n);                 // y *= alpha
float sum(const float* x, Index n);
float max(const float* x, Index n);                         // -inf for n == 0; NaN if any x_i is NaN
// y_i = exp(x_i + shift), returns sum_i y_i. Polynomial exp (Cephes expf, rel. error ~2e-7) on AVX2,
// std::exp on the scalar path: inputs below -87.3 give exactly 0 (so -inf scores vanish), a NaN gives
// NaN (so it reaches the sum), large inputs +inf (AVX2: from 88.38, see exp256).
float exp_shift_sum(const float* x, float shift, float* y, Index n);

// ---- tile helpers for flash attention (csrc/attention/)
// B packed into column panels of 16 (the micro-kernel's width), zero-padded: panel j0/16 holds
// B[p][j0 + jj] at dst[j0*k + p*16 + jj] · alpha, so each step of the micro-kernel reads one contiguous
// 64-byte row. B element (p, j) is read at b[p*rsb + j*csb] (csb = 1: row-major; rsb = 1: transposed).
// dst holds round_up(n, 16) · k floats.
void pack_b_panels(Index k, Index n, const float* b, Index rsb, Index csb, float alpha, float* dst);
// C (m×n) = [C +] A (m×k) · B (k×n), B packed by pack_b_panels (same k and n): a register-tiled
// micro-kernel (AVX2: 6 rows × 16 columns held in 12 ymm accumulators, one broadcast of A and two loads
// of B per step). A is read through strides, element (i, p) at a[i*rsa + p*csa], so a transposed tile
// (rsa = 1) needs no copy; C is row-major with row stride ldc.
void gemm_tile_packed_b(Index m, Index n, Index k, const float* a, Index rsa, Index csa, const float* bp, float* c,
                        Index ldc, bool accumulate);
// Online softmax down the columns of a score tile s (rows × cols, row stride lds), one column per query:
//   m_new = max(m, max_r s[r][c]),  corr[c] = exp(m - m_new),  s[r][c] = exp(s[r][c] - m_new),
//   l[c] = l[c]·corr[c] + Σ_r s[r][c],  m[c] = m_new.   A column that has seen only -inf keeps m = -inf,
//   l = 0 and s = 0 (never NaN). A NaN score (or a +inf one: inf - inf) makes its exp, and so l, NaN for
//   good (NaN · corr stays NaN in every later tile): the caller's out = acc / l is then NaN, as torch's.
void online_softmax_cols(float* s, Index rows, Index cols, Index lds, float* m, float* l, float* corr);
// s[r][c] = exp(s[r][c] - shift[c]); shift = +inf gives 0, a NaN score or shift gives NaN.
void exp_sub_cols(float* s, Index rows, Index cols, Index lds, const float* shift);
// The softmax backward on a transposed tile, one column per query (attention backward):
//   ds[r][c] = scale · p[r][c] · (ds[r][c] - delta[c])   (ds holds dP on entry, dS on return)
void softmax_grad_cols(float* ds, const float* p, Index rows, Index cols, Index ld, const float* delta, float scale);

}  // namespace minitx::simd
