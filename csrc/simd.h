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

// ---- tile helpers for flash attention (csrc/attention/; its matrix products: matmul/micro_kernel.h)
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
