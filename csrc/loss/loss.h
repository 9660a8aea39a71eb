// Loss kernels over the rows of a logits matrix. Reference: minitx/backends/numpy_ref.py (same names).
#pragma once
#include "common.h"

namespace minitx {

// Softmax cross-entropy of logits (rows × classes) against targets (rows,), label smoothing eps in [0, 1].
// Rows whose target is ignore_index are skipped: loss 0, lse 0, gradient 0. Other targets must lie in
// [0, classes) (the binding checks).
// forward: loss (rows,) and lse (rows,) = logsumexp of each row, in float64 (what the backward needs).
void cross_entropy_forward(const float* logits, const std::int64_t* target, float* loss, double* lse, Index rows,
                           Index classes, std::int64_t ignore_index, float label_smoothing);
// backward: dlogits (rows × classes) = dloss_n (softmax(x_n) - q_n), softmax recomputed from logits and lse.
void cross_entropy_backward(const float* dloss, const float* logits, const double* lse, const std::int64_t* target,
                            float* dlogits, Index rows, Index classes, std::int64_t ignore_index,
                            float label_smoothing);

}  // namespace minitx
