// GELU (Hendrycks & Gimpel, 2016), elementwise, forward and backward in one pass each.
//   erf form:  y = x Φ(x) = x (1 + erf(x/√2)) / 2,      dy/dx = Φ(x) + x φ(x),  φ(x) = exp(-x²/2)/√(2π)
//   tanh form: y = x (1 + tanh(u)) / 2, u = √(2/π)(x + 0.044715 x³)   (GPT-2's "gelu_new")
//              dy/dx = (1 + th)/2 + x (1 - th²) √(2/π)(1 + 3·0.044715 x²) / 2
// Reference: minitx/backends/numpy_ref.py::gelu_forward / gelu_backward
#include <cmath>

#include "fused/fused.h"

namespace minitx {

static constexpr float kSqrt2OverPi = 0.7978845608028654f;
static constexpr float kInvSqrt2 = 0.7071067811865476f;
static constexpr float kInvSqrt2Pi = 0.3989422804014327f;
static constexpr float kCubic = 0.044715f;

static inline float gelu_value(float x, GeluForm form) {
    if (form == GeluForm::Tanh) return 0.5f * x * (1.f + std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x)));
    return 0.5f * x * (1.f + std::erf(x * kInvSqrt2));
}

static inline float gelu_slope(float x, GeluForm form) {
    if (form == GeluForm::Tanh) {
        const float th = std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x));
        return 0.5f * (1.f + th) + 0.5f * x * (1.f - th * th) * kSqrt2OverPi * (1.f + 3.f * kCubic * x * x);
    }
    return 0.5f * (1.f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
}

void gelu_forward(const float* x, float* y, Index size, GeluForm form) {
    for_rows(size, 1, [&](Index i0, Index i1) {
        for (Index i = i0; i < i1; ++i) y[i] = gelu_value(x[i], form);
    });
}

void gelu_backward(const float* dy, const float* x, float* dx, Index size, GeluForm form) {
    for_rows(size, 1, [&](Index i0, Index i1) {
        for (Index i = i0; i < i1; ++i) dx[i] = dy[i] * gelu_slope(x[i], form);
    });
}

}  // namespace minitx
