// GELU (Hendrycks & Gimpel, 2016), elementwise, forward and backward in one pass each.
//   erf form:  y = x Φ(x) = x (1 + erf(x/√2)) / 2,      dy/dx = Φ(x) + x φ(x),  φ(x) = exp(-x²/2)/√(2π)
//   tanh form: y = x (1 + tanh(u)) / 2, u = √(2/π)(x + 0.044715 x³)   (GPT-2's "gelu_new")
//              dy/dx = (1 + th)/2 + x (1 - th²) √(2/π)(1 + 3·0.044715 x²) / 2
// Both are written with exp only, so the vectorised simd::exp_shift_sum does the expensive part:
//   tanh(u) = 1 - 2 / (exp(2u) + 1);   erf(z) = sign(z)(1 - erfc|z|) with the Numerical Recipes
//   erfc(z) ≈ t exp(-z² + P(t)), t = 1/(1 + z/2) (fractional error < 1.2e-7; same as numpy_ref.erf).
// The array is processed in chunks of kChunk elements held in small stack buffers.
// Reference: minitx/backends/numpy_ref.py::gelu_forward / gelu_backward
#include <cmath>

#include "fused/fused.h"
#include "simd.h"

namespace minitx {

static constexpr float kSqrt2OverPi = 0.7978845608028654f;
static constexpr float kInvSqrt2 = 0.7071067811865476f;
static constexpr float kInvSqrt2Pi = 0.3989422804014327f;
static constexpr float kCubic = 0.044715f;
static constexpr Index kChunk = 256;

// For a chunk, with th = tanh(√(2/π)(x + 0.044715 x³)) and e = exp(2u):
//   plus[i] = 1 + th = 2e / (e + 1),  minus[i] = 1 - th = 2 / (e + 1)
// (no cancellation where th is near ±1, i.e. where GELU's output is tiny).
static void tanh_inner(const float* x, float* plus, float* minus, Index n) {
    for (Index i = 0; i < n; ++i) plus[i] = 2.f * kSqrt2OverPi * (x[i] + kCubic * x[i] * x[i] * x[i]);
    simd::exp_shift_sum(plus, 0.f, plus, n);  // e = exp(2u); overflows to inf for large u
    for (Index i = 0; i < n; ++i) {
        const float e = plus[i];
        minus[i] = 2.f / (e + 1.f);
        plus[i] = e < 1e30f ? 2.f * e / (e + 1.f) : 2.f;
    }
}

// cdf[i] = Φ(x) = (1 + erf(x/√2)) / 2 for a chunk; t is scratch.
static void normal_cdf(const float* x, float* cdf, float* t, Index n) {
    for (Index i = 0; i < n; ++i) {
        const float z = std::fabs(x[i] * kInvSqrt2);
        const float ti = 1.f / (1.f + 0.5f * z);
        t[i] = ti;
        cdf[i] = -z * z - 1.26551223f + ti * (1.00002368f + ti * (0.37409196f + ti * (0.09678418f + ti * (
                 -0.18628806f + ti * (0.27886807f + ti * (-1.13520398f + ti * (1.48851587f + ti * (
                 -0.82215223f + ti * 0.17087277f))))))));
    }
    simd::exp_shift_sum(cdf, 0.f, cdf, n);
    for (Index i = 0; i < n; ++i) {
        const float half_erfc = 0.5f * t[i] * cdf[i];  // Φ(x) = erfc(|x|/√2)/2 for x < 0: no cancellation
        cdf[i] = x[i] < 0.f ? half_erfc : 1.f - half_erfc;
    }
}

void gelu_forward(const float* x, float* y, Index size, GeluForm form) {
    for_rows(size, 1, [&](Index i0, Index i1) {
        float a[kChunk], t[kChunk];
        for (Index c = i0; c < i1; c += kChunk) {
            const Index n = std::min(kChunk, i1 - c);
            const float* xc = x + c;
            if (form == GeluForm::Tanh) {
                tanh_inner(xc, a, t, n);
                for (Index i = 0; i < n; ++i) y[c + i] = 0.5f * xc[i] * a[i];
            } else {
                normal_cdf(xc, a, t, n);
                for (Index i = 0; i < n; ++i) y[c + i] = xc[i] * a[i];
            }
        }
    });
}

void gelu_backward(const float* dy, const float* x, float* dx, Index size, GeluForm form) {
    for_rows(size, 1, [&](Index i0, Index i1) {
        float a[kChunk], t[kChunk];
        for (Index c = i0; c < i1; c += kChunk) {
            const Index n = std::min(kChunk, i1 - c);
            const float* xc = x + c;
            if (form == GeluForm::Tanh) {
                tanh_inner(xc, a, t, n);
                for (Index i = 0; i < n; ++i) {
                    const float xi = xc[i];
                    dx[c + i] = dy[c + i] * (0.5f * a[i] + 0.5f * xi * (a[i] * t[i]) * kSqrt2OverPi *
                                                               (1.f + 3.f * kCubic * xi * xi));
                }
            } else {
                normal_cdf(xc, a, t, n);
                for (Index i = 0; i < n; ++i) t[i] = -0.5f * xc[i] * xc[i];
                simd::exp_shift_sum(t, 0.f, t, n);  // exp(-x²/2)
                for (Index i = 0; i < n; ++i) dx[c + i] = dy[c + i] * (a[i] + xc[i] * kInvSqrt2Pi * t[i]);
            }
        }
    });
}

}  // namespace minitx
