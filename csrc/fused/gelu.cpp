// GELU (Hendrycks & Gimpel, 2016), elementwise, forward and backward in one pass each.
//   erf form:  y = x Φ(x) = x (1 + erf(x/√2)) / 2,      dy/dx = Φ(x) + x φ(x),  φ(x) = exp(-x²/2)/√(2π)
//   tanh form: y = x (1 + tanh(u)) / 2, u = √(2/π)(x + 0.044715 x³)   (GPT-2's "gelu_new")
//              dy/dx = (1 + th)/2 + x (1 - th²) √(2/π)(1 + 3·0.044715 x²) / 2
// Both are written with exp only:
//   tanh(u) = 1 - 2 / (exp(2u) + 1);   erf(z) = sign(z)(1 - erfc|z|) with the Numerical Recipes
//   erfc(z) ≈ t exp(-z² + P(t)), t = 1/(1 + z/2) (fractional error < 1.2e-7; same as numpy_ref.erf).
// AVX2 body: 8 elements at a time, the whole formula in registers (one read of x, one write of y) with
// the polynomial exp of simd_avx2.h. Scalar body: chunks of kChunk elements through simd::exp_shift_sum.
// Large arrays are split over threads (for_rows).
// The erf form's forward uses a rational erf (one division, no exp) where x >= -3 (normal_cdf8_fast).
// Edge values as torch's formulas give them: NaN -> NaN, gelu(+inf) = +inf, gelu(-inf) = -inf · 0 = NaN;
// the backward is NaN at ±inf (x φ(x) = inf · 0), the tanh form's already from |x| > 1.8e19, where x²
// overflows (x (1 - th²) · (1 + 3·0.044715 x²) = 0 · inf).
// Speed: benchmarks/results/fused.json.
// Reference: minitx/backends/numpy_ref.py::gelu_forward / gelu_backward
#include <algorithm>
#include <cmath>

#include "fused/fused.h"
#include "simd.h"
#include "simd_avx2.h"

namespace minitx {

static constexpr float kSqrt2OverPi = 0.7978845608028654f;
static constexpr float kInvSqrt2 = 0.7071067811865476f;
static constexpr float kInvSqrt2Pi = 0.3989422804014327f;
static constexpr float kCubic = 0.044715f;
static constexpr Index kChunk = 256;

// ---------------------------------------------------------------- scalar body
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

static void gelu_scalar(const float* dy, const float* x, float* out, Index size, GeluForm form) {
    float a[kChunk], t[kChunk];
    for (Index c = 0; c < size; c += kChunk) {
        const Index n = std::min(kChunk, size - c);
        const float* xc = x + c;
        if (form == GeluForm::Tanh) {
            tanh_inner(xc, a, t, n);
            for (Index i = 0; i < n; ++i) {
                const float xi = xc[i];
                out[c + i] = dy ? dy[c + i] * (0.5f * a[i] + 0.5f * xi * (a[i] * t[i]) * kSqrt2OverPi *
                                                                 (1.f + 3.f * kCubic * xi * xi))
                                : 0.5f * xi * a[i];
            }
        } else {
            normal_cdf(xc, a, t, n);
            if (!dy) {
                for (Index i = 0; i < n; ++i) out[c + i] = xc[i] * a[i];
                continue;
            }
            for (Index i = 0; i < n; ++i) t[i] = -0.5f * xc[i] * xc[i];
            simd::exp_shift_sum(t, 0.f, t, n);  // exp(-x²/2)
            for (Index i = 0; i < n; ++i) out[c + i] = dy[c + i] * (a[i] + xc[i] * kInvSqrt2Pi * t[i]);
        }
    }
}

// ---------------------------------------------------------------- AVX2 body
__attribute__((target("avx2,fma"))) static inline __m256 normal_cdf8(__m256 x) {
    const __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), x), _mm256_set1_ps(kInvSqrt2));
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, _mm256_set1_ps(1.f)));
    static const float c[] = {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f,
                              0.09678418f, 0.37409196f, 1.00002368f};
    __m256 p = _mm256_set1_ps(0.17087277f);
    for (float ci : c) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ci));
    // exponent: -z² - 1.26551223 + t·p
    const __m256 arg = _mm256_fmadd_ps(t, p, _mm256_fnmadd_ps(z, z, _mm256_set1_ps(-1.26551223f)));
    const __m256 half_erfc = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), t), simd::exp256(arg));
    const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.f), half_erfc), half_erfc, neg);
}

// Φ(x) for x >= -3 by a rational erf with no exp: erf(z) ≈ z P(z²) / Q(z²) on |z| <= 4 (the minimax fit
// of XLA's and Eigen's fast float erf; |error| < 5e-7, and Φ = (1 + erf)/2 stays within the tests'
// atol 1e-6 down to x = -3). Below -3, 1 + erf cancels, so a vector with any lane there takes the exp form.
__attribute__((target("avx2,fma"))) static inline __m256 normal_cdf8_fast(__m256 x) {
    if (_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-3.f), _CMP_LT_OQ))) return normal_cdf8(x);
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(kInvSqrt2));
    z = _mm256_max_ps(_mm256_min_ps(z, _mm256_set1_ps(4.f)), _mm256_set1_ps(-4.f));  // erf = ±1 beyond (float)
    const __m256 z2 = _mm256_mul_ps(z, z);
    __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
    for (float c : {2.77068142495902e-08f, -2.10102402082508e-06f, -5.69250639462346e-05f, -7.34990630326855e-04f,
                    -2.95459980854025e-03f, -1.60960333262415e-02f})
        p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(c));
    __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
    for (float c : {-2.13374055278905e-04f, -1.68282697438203e-03f, -7.37332916720468e-03f, -1.42647390514189e-02f})
        q = _mm256_fmadd_ps(q, z2, _mm256_set1_ps(c));
    const __m256 erf = _mm256_div_ps(_mm256_mul_ps(z, p), q);
    return _mm256_fmadd_ps(_mm256_set1_ps(0.5f), erf, _mm256_set1_ps(0.5f));
}

// 8 lanes of the forward (Backward = false; dy unused) or the backward, specialised at compile time.
template <bool Backward, GeluForm Form>
__attribute__((target("avx2,fma"))) static inline __m256 gelu8(__m256 x, __m256 dy) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.f), two = _mm256_set1_ps(2.f);
    const __m256 x2 = _mm256_mul_ps(x, x);
    if constexpr (Form == GeluForm::Tanh) {
        const __m256 u2 = _mm256_mul_ps(_mm256_set1_ps(2.f * kSqrt2OverPi),
                                        _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(kCubic), x2), x, x));
        const __m256 e = simd::exp256(u2);  // +inf for large u, as the scalar body's std::exp
        const __m256 e1 = _mm256_add_ps(e, one);
        const __m256 plus = _mm256_blendv_ps(_mm256_div_ps(_mm256_mul_ps(two, e), e1), two,
                                             _mm256_cmp_ps(e, _mm256_set1_ps(1e30f), _CMP_GE_OQ));
        if constexpr (!Backward) return _mm256_mul_ps(_mm256_mul_ps(half, x), plus);
        const __m256 minus = _mm256_div_ps(two, e1);
        const __m256 poly = _mm256_fmadd_ps(_mm256_set1_ps(3.f * kCubic), x2, one);
        const __m256 inner = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_mul_ps(plus, minus)),
                                           _mm256_mul_ps(_mm256_set1_ps(kSqrt2OverPi), poly));
        return _mm256_mul_ps(dy, _mm256_fmadd_ps(half, plus, inner));
    }
    const __m256 cdf = normal_cdf8_fast(x);
    if constexpr (!Backward) return _mm256_mul_ps(x, cdf);
    const __m256 pdf = _mm256_mul_ps(_mm256_set1_ps(kInvSqrt2Pi), simd::exp256(_mm256_mul_ps(_mm256_set1_ps(-0.5f), x2)));
    return _mm256_mul_ps(dy, _mm256_fmadd_ps(x, pdf, cdf));
}

template <bool Backward, GeluForm Form>
__attribute__((target("avx2,fma"))) static void gelu_avx2(const float* dy, const float* x, float* out, Index size) {
    Index i = 0;
    for (; i + 8 <= size; i += 8)
        _mm256_storeu_ps(out + i, gelu8<Backward, Form>(_mm256_loadu_ps(x + i),
                                                        Backward ? _mm256_loadu_ps(dy + i) : _mm256_setzero_ps()));
    if (i < size) {  // the tail through a padded buffer, same formula
        alignas(32) float xb[8] = {0}, db[8] = {0}, ob[8];
        for (Index l = 0; i + l < size; ++l) {
            xb[l] = x[i + l];
            if (Backward) db[l] = dy[i + l];
        }
        _mm256_store_ps(ob, gelu8<Backward, Form>(_mm256_load_ps(xb), _mm256_load_ps(db)));
        for (Index l = 0; i + l < size; ++l) out[i + l] = ob[l];
    }
}

static void gelu_avx2_any(const float* dy, const float* x, float* out, Index size, GeluForm form) {
    if (form == GeluForm::Tanh)
        return dy ? gelu_avx2<true, GeluForm::Tanh>(dy, x, out, size) : gelu_avx2<false, GeluForm::Tanh>(dy, x, out, size);
    return dy ? gelu_avx2<true, GeluForm::Erf>(dy, x, out, size) : gelu_avx2<false, GeluForm::Erf>(dy, x, out, size);
}

static void gelu(const float* dy, const float* x, float* out, Index size, GeluForm form) {
    const bool avx2 = current_isa() != Isa::Scalar;
    for_rows(size, 1, [&](Index i0, Index i1) {
        const float* dyc = dy ? dy + i0 : nullptr;
        if (avx2) gelu_avx2_any(dyc, x + i0, out + i0, i1 - i0, form);
        else gelu_scalar(dyc, x + i0, out + i0, i1 - i0, form);
    });
}

void gelu_forward(const float* x, float* y, Index size, GeluForm form) { gelu(nullptr, x, y, size, form); }

void gelu_backward(const float* dy, const float* x, float* dx, Index size, GeluForm form) { gelu(dy, x, dx, size, form); }

}  // namespace minitx
