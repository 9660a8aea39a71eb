// Vector helpers (see simd.h): an AVX2+FMA body and a scalar body for each.
#include "simd.h"

#include <immintrin.h>

#include <cmath>

namespace minitx::simd {

// ---------------------------------------------------------------- scalar bodies
static float dot_scalar(const float* a, const float* b, Index n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 independent sums: exact same order as the AVX2 body
    Index i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

static float sum_scalar(const float* x, Index n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Index i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += x[i + l];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i) s += x[i];
    return s;
}

static float exp_shift_sum_scalar(const float* x, float shift, float* y, Index n) {
    float s = 0.f;
    for (Index i = 0; i < n; ++i) {
        float t = x[i] + shift;
        y[i] = t < -87.3365f ? 0.f : std::exp(t);
        s += y[i];
    }
    return s;
}

// ---------------------------------------------------------------- AVX2 + FMA bodies
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float* a, const float* b, Index n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    Index i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma"))) static void axpy_avx2(float* y, float alpha, const float* x, Index n) {
    const __m256 va = _mm256_set1_ps(alpha);
    Index i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += alpha * x[i];
}

__attribute__((target("avx2,fma"))) static float sum_avx2(const float* x, Index n) {
    __m256 acc = _mm256_setzero_ps();
    Index i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
    float s = hsum256(acc);
    for (; i < n; ++i) s += x[i];
    return s;
}

__attribute__((target("avx2,fma"))) static float max_avx2(const float* x, Index n) {
    __m256 acc = _mm256_set1_ps(-INFINITY);
    Index i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_max_ps(acc, _mm256_loadu_ps(x + i));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    float m = -INFINITY;
    for (float v : lanes) m = v > m ? v : m;
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

// exp(x) = 2^k · exp(r), k = round(x / ln 2), r = x - k ln 2 (ln 2 split in two for accuracy),
// exp(r) by the Cephes expf polynomial on |r| <= ln2/2.
__attribute__((target("avx2,fma"))) static inline __m256 exp256(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365f), _CMP_LT_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(underflow, y);
}

__attribute__((target("avx2,fma"))) static float exp_shift_sum_avx2(const float* x, float shift, float* y, Index n) {
    const __m256 vs = _mm256_set1_ps(shift);
    __m256 acc = _mm256_setzero_ps();
    Index i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_add_ps(_mm256_loadu_ps(x + i), vs));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = hsum256(acc);
    if (i < n) {  // tail through the same polynomial, so every element sees the same rounding
        alignas(32) float buf[8];
        for (int l = 0; l < 8; ++l) buf[l] = i + l < n ? x[i + l] : -INFINITY;
        _mm256_store_ps(buf, exp256(_mm256_add_ps(_mm256_load_ps(buf), vs)));
        for (int l = 0; i + l < n; ++l) { y[i + l] = buf[l]; s += buf[l]; }
    }
    return s;
}

// ---------------------------------------------------------------- dispatch
static bool use_avx2() { return current_isa() != Isa::Scalar; }

float dot(const float* a, const float* b, Index n) { return use_avx2() ? dot_avx2(a, b, n) : dot_scalar(a, b, n); }

void axpy(float* y, float alpha, const float* x, Index n) {
    if (use_avx2()) return axpy_avx2(y, alpha, x, n);
    for (Index i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void scale(float* y, float alpha, Index n) {
    for (Index i = 0; i < n; ++i) y[i] *= alpha;  // auto-vectorised (no reduction)
}

float sum(const float* x, Index n) { return use_avx2() ? sum_avx2(x, n) : sum_scalar(x, n); }

float max(const float* x, Index n) {
    if (use_avx2()) return max_avx2(x, n);
    float m = -INFINITY;
    for (Index i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

float exp_shift_sum(const float* x, float shift, float* y, Index n) {
    return use_avx2() ? exp_shift_sum_avx2(x, shift, y, n) : exp_shift_sum_scalar(x, shift, y, n);
}

}  // namespace minitx::simd
