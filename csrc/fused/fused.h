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

// Rows are split over threads only when there is enough work (rows·n elements): body(r0, r1) gets a
// range of rows. The _worker form also passes the worker index in [0, for_rows_workers(rows, n)), for
// per-thread accumulators (layer norm's dw, db).
void for_rows(Index rows, Index n, const std::function<void(Index, Index)>& body);
int for_rows_workers(Index rows, Index n);
void for_rows_worker(Index rows, Index n, const std::function<void(Index, Index, int)>& body);

}  // namespace minitx
