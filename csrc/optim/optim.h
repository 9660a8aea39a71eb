// Optimizer updates over flat parameter arrays, in place. Reference: minitx/backends/numpy_ref.py (same names).
#pragma once
#include "common.h"

namespace minitx {

// The constants of one Adam/AdamW step, rounded to float32 as NumPy applies Python floats to float32 arrays
// (minitx/backends/numpy_ref.py::adamw_step; the binding computes them from lr, betas, eps, λ and the step t).
struct AdamConstants {
    float decay;                  // 1 - lr·λ (AdamW: θ <- θ·decay); 1 for Adam or λ = 0
    float l2;                     // λ for Adam (g <- g + λθ); 0 for AdamW
    float one_minus_beta1, beta2, one_minus_beta2;
    float bias_correction2_sqrt;  // sqrt(1 - β2^t)
    float eps;
    float step_size;              // lr / (1 - β1^t)
};

// One step over n elements of param, grad, exp_avg (m), exp_avg_sq (v); max_exp_avg_sq is null unless amsgrad.
void adamw_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, Index n,
                const AdamConstants& k);

}  // namespace minitx
