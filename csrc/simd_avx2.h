// AVX2+FMA building blocks shared by the vector bodies in simd.cpp and csrc/fused/: each is an inline
// function compiled for "avx2,fma" only (per-function target attribute, no -march), so it may be called
// only from functions with the same target, after the run-time check current_isa() != Isa::Scalar.
#pragma once
#include <immintrin.h>

#include <cmath>

namespace minitx::simd {

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

// exp(x) = 2^k · exp(r), k = round(x / ln 2), r = x - k ln 2 (ln 2 split in two for accuracy),
// exp(r) by the Cephes expf polynomial on |r| <= ln2/2. k is rounded by adding 1.5·2^23 + 127 in one
// FMA: the sum's low mantissa bits are then the integer k + 127, so a shift by 23 makes 2^k's bits
// directly (two operations instead of round + convert + add + shift: ~10% of a softmax's time).
// Edge values, with no extra instruction:
//   x < -87.34 (and -inf) -> 0 (the underflow mask);
//   x > 88.38 (and +inf) -> +inf: x is clamped to ln(FLT_MAX), where k = 128, and the exponent bits of
//     2^128 (k + 127 = 255) are those of +inf (0.35 before float's true overflow point);
//   NaN -> NaN: min/max return their *second* operand when either is NaN, so the clamps take x second.
__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365f), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_set1_ps(88.7228394f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-87.3365f), x);
    const __m256 magic = _mm256_set1_ps(12583039.f);  // 1.5·2^23 + 127
    const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    const __m256 k = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(t), 23);  // (k + 127) << 23 = the bits of 2^k
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// The mask of lanes [0, n) of an 8-lane vector: all lanes for n >= 8, none for n <= 0.
__attribute__((target("avx2,fma"))) inline __m256i lanes_below(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 8 ? n : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Lanes [0, n) of a 16-wide row as two 8-lane masks (for the last, partial column block).
__attribute__((target("avx2,fma"))) inline void tail_masks(long n, __m256i* m0, __m256i* m1) {
    *m0 = lanes_below(n);
    *m1 = lanes_below(n - 8);
}

}  // namespace minitx::simd
