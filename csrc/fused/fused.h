// Fused row-wise kernels over the last axis: one pass over memory where NumPy makes several.
// Reference: minitx/backends/numpy_ref.py (same function names).
#pragma once
#include "common.h"

namespace minitx {

void softmax_forward(const float* x, float* y, Index rows, Index n);
void softmax_backward(const float* dy, const float* y, float* dx, Index rows, Index n);

void layer_norm_forward(const float* x, const float* w, const float* b, float eps, float* y, float* mean, float* rstd,
                        Index rows, Index n);
void layer_norm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                         float* dx, float* dw, float* db, Index rows, Index n);

enum class GeluForm { Erf, Tanh };
void gelu_forward(const float* x, float* y, Index size, GeluForm form);
void gelu_backward(const float* dy, const float* x, float* dx, Index size, GeluForm form);

}  // namespace minitx
