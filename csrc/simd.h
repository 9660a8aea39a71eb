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
float max(const float* x, Index n);                         // -inf for n == 0
// y_i = exp(x_i + shift), returns sum_i y_i. Polynomial exp (Cephes expf, rel. error ~2e-7);
// inputs below -87.3 give exactly 0 (so -inf scores vanish), never NaN from -inf.
float exp_shift_sum(const float* x, float shift, float* y, Index n);

}  // namespace minitx::simd
