// Adam / AdamW (Kingma & Ba 2015, Alg. 1; Loshchilov & Hutter 2019), one pass over param, grad, m and v:
//   θ <- θ (1 - η λ)                                   (AdamW, decoupled weight decay; Adam adds λθ to g instead)
//   m <- m + (g - m)(1 - β1),   v <- β2 v + (1 - β2) g²
//   θ <- θ - η/(1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)       (amsgrad: v replaced by max(v_max, v))
// The operations, their order and the float32 constants are those of the NumPy reference (itself torch's
// order), so the two agree to an ulp or so (the AVX2 body may fuse a multiply-add). NumPy makes ~10 passes
// over memory with temporaries; this makes one: 4 arrays read, 3 written, 28 bytes per parameter. Large
// parameters are split over threads (for_rows over single elements).
// Speed: benchmarks/results/losses.json.
// Reference: minitx/backends/numpy_ref.py::adamw_step
#include <cmath>

#include "optim/optim.h"
#include "simd_avx2.h"

namespace minitx {

static void adamw_scalar(float* p, const float* g, float* m, float* v, float* vmax, Index n, const AdamConstants& k) {
    for (Index i = 0; i < n; ++i) {
        const float gi = k.l2 != 0.f ? g[i] + k.l2 * p[i] : g[i];
        const float theta = p[i] * k.decay;
        m[i] += (gi - m[i]) * k.one_minus_beta1;
        v[i] = v[i] * k.beta2 + k.one_minus_beta2 * gi * gi;
        float vi = v[i];
        if (vmax) vi = vmax[i] = std::isnan(vi) || vi > vmax[i] ? vi : vmax[i];  // np.maximum keeps NaN
        p[i] = theta - k.step_size * (m[i] / (std::sqrt(vi) / k.bias_correction2_sqrt + k.eps));
    }
}

__attribute__((target("avx2,fma"))) static void adamw_avx2(float* p, const float* g, float* m, float* v, float* vmax,
                                                           Index n, const AdamConstants& k) {
    const __m256 decay = _mm256_set1_ps(k.decay), l2 = _mm256_set1_ps(k.l2), b1c = _mm256_set1_ps(k.one_minus_beta1),
                 b2 = _mm256_set1_ps(k.beta2), b2c = _mm256_set1_ps(k.one_minus_beta2),
                 bc2 = _mm256_set1_ps(k.bias_correction2_sqrt), eps = _mm256_set1_ps(k.eps),
                 step = _mm256_set1_ps(k.step_size);
    const bool coupled = k.l2 != 0.f;
    Index i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 theta = _mm256_loadu_ps(p + i);
        __m256 gi = _mm256_loadu_ps(g + i);
        if (coupled) gi = _mm256_add_ps(gi, _mm256_mul_ps(l2, theta));
        __m256 mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
        mi = _mm256_add_ps(mi, _mm256_mul_ps(_mm256_sub_ps(gi, mi), b1c));
        vi = _mm256_add_ps(_mm256_mul_ps(vi, b2), _mm256_mul_ps(_mm256_mul_ps(b2c, gi), gi));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        if (vmax) {  // max_ps returns its second operand when either is NaN: vi second keeps a NaN v
            vi = _mm256_max_ps(_mm256_loadu_ps(vmax + i), vi);
            _mm256_storeu_ps(vmax + i, vi);
        }
        const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_mul_ps(theta, decay),
                                              _mm256_mul_ps(step, _mm256_div_ps(mi, denom))));
    }
    adamw_scalar(p + i, g + i, m + i, v + i, vmax ? vmax + i : nullptr, n - i, k);
}

void adamw_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, Index n,
                const AdamConstants& k) {
    const bool avx2 = current_isa() != Isa::Scalar;
    for_rows(n, 1, [&](Index i0, Index i1) {
        float* vmax = max_exp_avg_sq ? max_exp_avg_sq + i0 : nullptr;
        if (avx2) adamw_avx2(param + i0, grad + i0, exp_avg + i0, exp_avg_sq + i0, vmax, i1 - i0, k);
        else adamw_scalar(param + i0, grad + i0, exp_avg + i0, exp_avg_sq + i0, vmax, i1 - i0, k);
    });
}

}  // namespace minitx
