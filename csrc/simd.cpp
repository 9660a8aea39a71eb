// Vector helpers (see simd.h): an AVX2+FMA body and a scalar body for each.
#include "simd.h"
#include "simd_avx2.h"

#include <immintrin.h>

#include <algorithm>
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

// max(start, x_0, ..., x_{n-1}); NaN if any x_i is NaN (as np.max), where `x > m ? x : m` alone would skip it.
static float max_scalar(const float* x, Index n, float start) {
    float m = start;
    for (Index i = 0; i < n; ++i) {
        if (std::isnan(x[i])) return NAN;
        m = x[i] > m ? x[i] : m;
    }
    return m;
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

static void online_softmax_cols_scalar(float* s, Index rows, Index cols, Index lds, float* m, float* l,
                                       float* corr) {
    for (Index c = 0; c < cols; ++c) {
        float mx = m[c];
        for (Index r = 0; r < rows; ++r) mx = s[r * lds + c] > mx ? s[r * lds + c] : mx;
        const float shift = mx == -INFINITY ? 0.f : mx;
        corr[c] = m[c] == -INFINITY ? 0.f : std::exp(m[c] - shift);
        float sum = 0.f;
        for (Index r = 0; r < rows; ++r) {
            const float t = s[r * lds + c] - shift;
            s[r * lds + c] = t < -87.3365f ? 0.f : std::exp(t);
            sum += s[r * lds + c];
        }
        l[c] = l[c] * corr[c] + sum;
        m[c] = mx;
    }
}

static void exp_sub_cols_scalar(float* s, Index rows, Index cols, Index lds, const float* shift) {
    for (Index r = 0; r < rows; ++r)
        for (Index c = 0; c < cols; ++c) {
            const float t = s[r * lds + c] - shift[c];
            s[r * lds + c] = t < -87.3365f ? 0.f : std::exp(t);
        }
}

static void softmax_grad_cols_scalar(float* ds, const float* p, Index rows, Index cols, Index ld, const float* delta,
                                     float scale) {
    for (Index r = 0; r < rows; ++r)
        for (Index c = 0; c < cols; ++c) ds[r * ld + c] = scale * p[r * ld + c] * (ds[r * ld + c] - delta[c]);
}

// ---------------------------------------------------------------- AVX2 + FMA bodies
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

__attribute__((target("avx2,fma"))) static void scale_avx2(float* y, float alpha, Index n) {
    const __m256 va = _mm256_set1_ps(alpha);
    Index i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] *= alpha;
}

__attribute__((target("avx2,fma"))) static float sum_avx2(const float* x, Index n) {
    __m256 acc = _mm256_setzero_ps();
    Index i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
    float s = hsum256(acc);
    for (; i < n; ++i) s += x[i];
    return s;
}

// max_ps alone would drop a NaN (it returns its second operand when either is NaN), so an unordered
// self-compare collects NaN lanes on the side; a NaN anywhere makes the result NaN.
__attribute__((target("avx2,fma"))) static float max_avx2(const float* x, Index n) {
    __m256 acc = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    Index i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_max_ps(acc, v);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    float m = -INFINITY;
    for (float v : lanes) m = v > m ? v : m;
    if (_mm256_movemask_ps(nan)) return NAN;
    return max_scalar(x + i, n - i, m);
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

// Load/store 8 lanes, masked only for a partial last group (a masked store is slow on some CPUs).
template <bool FULL>
__attribute__((target("avx2,fma"))) static inline __m256 load8(const float* p, __m256i mask) {
    return FULL ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}
template <bool FULL>
__attribute__((target("avx2,fma"))) static inline void store8(float* p, __m256i mask, __m256 x) {
    if (FULL) _mm256_storeu_ps(p, x);
    else _mm256_maskstore_ps(p, mask, x);
}

// Eight columns c0..c0+7 (fewer, masked, for the last group). Masked-off lanes read 0 and are never stored.
template <bool FULL>
__attribute__((target("avx2,fma"))) static void online_softmax_8cols(float* s, Index rows, Index lds, float* m,
                                                                     float* l, float* corr, __m256i mask) {
    const __m256 m_old = load8<FULL>(m, mask);
    __m256 mx = m_old;
    for (Index r = 0; r < rows; ++r) mx = _mm256_max_ps(mx, load8<FULL>(s + r * lds, mask));
    const __m256 shift = _mm256_andnot_ps(_mm256_cmp_ps(mx, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ), mx);  // -inf -> 0
    const __m256 cr = exp256(_mm256_sub_ps(m_old, shift));  // m_old = -inf -> 0
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    Index r = 0;
    for (; r + 2 <= rows; r += 2) {  // two independent exp chains in flight
        float* s0 = s + r * lds;
        const __m256 e0 = exp256(_mm256_sub_ps(load8<FULL>(s0, mask), shift));
        const __m256 e1 = exp256(_mm256_sub_ps(load8<FULL>(s0 + lds, mask), shift));
        store8<FULL>(s0, mask, e0);
        store8<FULL>(s0 + lds, mask, e1);
        sum0 = _mm256_add_ps(sum0, e0);
        sum1 = _mm256_add_ps(sum1, e1);
    }
    if (r < rows) {
        const __m256 e = exp256(_mm256_sub_ps(load8<FULL>(s + r * lds, mask), shift));
        store8<FULL>(s + r * lds, mask, e);
        sum0 = _mm256_add_ps(sum0, e);
    }
    store8<FULL>(corr, mask, cr);
    store8<FULL>(l, mask, _mm256_fmadd_ps(load8<FULL>(l, mask), cr, _mm256_add_ps(sum0, sum1)));
    store8<FULL>(m, mask, mx);
}

__attribute__((target("avx2,fma"))) static void online_softmax_cols_avx2(float* s, Index rows, Index cols, Index lds,
                                                                         float* m, float* l, float* corr) {
    __m256i mask, unused;
    Index c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) online_softmax_8cols<true>(s + c0, rows, lds, m + c0, l + c0, corr + c0, mask);
    if (c0 < cols) {
        tail_masks(cols - c0, &mask, &unused);
        online_softmax_8cols<false>(s + c0, rows, lds, m + c0, l + c0, corr + c0, mask);
    }
}

template <bool FULL>
__attribute__((target("avx2,fma"))) static void exp_sub_8cols(float* s, Index rows, Index lds, const float* shift,
                                                              __m256i mask) {
    const __m256 sh = load8<FULL>(shift, mask);
    for (Index r = 0; r < rows; ++r) store8<FULL>(s + r * lds, mask, exp256(_mm256_sub_ps(load8<FULL>(s + r * lds, mask), sh)));
}

__attribute__((target("avx2,fma"))) static void exp_sub_cols_avx2(float* s, Index rows, Index cols, Index lds,
                                                                  const float* shift) {
    __m256i mask, unused;
    Index c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) exp_sub_8cols<true>(s + c0, rows, lds, shift + c0, mask);
    if (c0 < cols) {
        tail_masks(cols - c0, &mask, &unused);
        exp_sub_8cols<false>(s + c0, rows, lds, shift + c0, mask);
    }
}

template <bool FULL>
__attribute__((target("avx2,fma"))) static void softmax_grad_8cols(float* ds, const float* p, Index rows, Index ld,
                                                                   const float* delta, float scale, __m256i mask) {
    const __m256 d = load8<FULL>(delta, mask), sc = _mm256_set1_ps(scale);
    for (Index r = 0; r < rows; ++r) {
        const __m256 sp = _mm256_mul_ps(sc, load8<FULL>(p + r * ld, mask));
        store8<FULL>(ds + r * ld, mask, _mm256_mul_ps(sp, _mm256_sub_ps(load8<FULL>(ds + r * ld, mask), d)));
    }
}

__attribute__((target("avx2,fma"))) static void softmax_grad_cols_avx2(float* ds, const float* p, Index rows,
                                                                       Index cols, Index ld, const float* delta,
                                                                       float scale) {
    __m256i mask, unused;
    Index c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) softmax_grad_8cols<true>(ds + c0, p + c0, rows, ld, delta + c0, scale, mask);
    if (c0 < cols) {
        tail_masks(cols - c0, &mask, &unused);
        softmax_grad_8cols<false>(ds + c0, p + c0, rows, ld, delta + c0, scale, mask);
    }
}

// ---------------------------------------------------------------- dispatch
static bool use_avx2() { return current_isa() != Isa::Scalar; }

float dot(const float* a, const float* b, Index n) { return use_avx2() ? dot_avx2(a, b, n) : dot_scalar(a, b, n); }

void axpy(float* y, float alpha, const float* x, Index n) {
    if (use_avx2()) return axpy_avx2(y, alpha, x, n);
    for (Index i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void scale(float* y, float alpha, Index n) {
    if (use_avx2()) return scale_avx2(y, alpha, n);
    for (Index i = 0; i < n; ++i) y[i] *= alpha;
}

float sum(const float* x, Index n) { return use_avx2() ? sum_avx2(x, n) : sum_scalar(x, n); }

float max(const float* x, Index n) { return use_avx2() ? max_avx2(x, n) : max_scalar(x, n, -INFINITY); }

float exp_shift_sum(const float* x, float shift, float* y, Index n) {
    return use_avx2() ? exp_shift_sum_avx2(x, shift, y, n) : exp_shift_sum_scalar(x, shift, y, n);
}

void online_softmax_cols(float* s, Index rows, Index cols, Index lds, float* m, float* l, float* corr) {
    if (use_avx2()) return online_softmax_cols_avx2(s, rows, cols, lds, m, l, corr);
    online_softmax_cols_scalar(s, rows, cols, lds, m, l, corr);
}

void exp_sub_cols(float* s, Index rows, Index cols, Index lds, const float* shift) {
    if (use_avx2()) return exp_sub_cols_avx2(s, rows, cols, lds, shift);
    exp_sub_cols_scalar(s, rows, cols, lds, shift);
}

void softmax_grad_cols(float* ds, const float* p, Index rows, Index cols, Index ld, const float* delta, float scale) {
    if (use_avx2()) return softmax_grad_cols_avx2(ds, p, rows, cols, ld, delta, scale);
    softmax_grad_cols_scalar(ds, p, rows, cols, ld, delta, scale);
}

}  // namespace minitx::simd
