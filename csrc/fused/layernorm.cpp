// Fused layer norm (Ba, Kiros & Hinton, 2016) over the last axis, forward and backward.
//   forward:  y = (x - mean) · rstd · w + b,  rstd = 1/sqrt(var + eps)   (two-pass variance: stable)
//   backward: xhat = (x - mean)·rstd, g = dy·w,
//             dx = rstd · (g - mean(g) - xhat · mean(g·xhat)),  dw = Σ_rows dy·xhat,  db = Σ_rows dy
// Per row the forward reads x three times (sum, squared deviations, output) and the backward reads dy
// and x twice, but a row (≤ 16 KiB for n ≤ 4096) stays in L1/L2, so memory sees one read of each input
// and one write of each output. AVX2 bodies with 8-wide FMA; scalar bodies with the same loop structure.
// dw/db are summed per worker thread into private buffers, then added up (no atomics, no locks).
// A NaN or ±inf in a row makes its mean or variance NaN, so the whole row (and its mean/rstd) is NaN, as in
// the reference; an empty last axis gives mean = rstd = NaN (the mean of nothing).
// Speed: benchmarks/results/fused.json.
// Reference: minitx/backends/numpy_ref.py::layer_norm_forward / layer_norm_backward
#include <algorithm>
#include <cmath>
#include <vector>

#include "fused/fused.h"
#include "simd.h"
#include "simd_avx2.h"

namespace minitx {

// ---------------------------------------------------------------- one row, scalar
static void ln_forward_row_scalar(const float* x, const float* w, const float* b, float eps, float* y, float* mean,
                                  float* rstd, Index n) {
    const float mu = simd::sum(x, n) / float(n);
    float ss = 0.f;
    for (Index i = 0; i < n; ++i) ss += (x[i] - mu) * (x[i] - mu);
    const float rs = 1.f / std::sqrt(ss / float(n) + eps);
    for (Index i = 0; i < n; ++i) y[i] = (x[i] - mu) * rs * w[i] + b[i];
    *mean = mu;
    *rstd = rs;
}

static void ln_backward_row_scalar(const float* dy, const float* x, const float* w, float mu, float rs, float* dx,
                                   float* dw, float* db, Index n) {
    float sum_g = 0.f, sum_gx = 0.f;
    for (Index i = 0; i < n; ++i) {
        const float xhat = (x[i] - mu) * rs, g = dy[i] * w[i];
        sum_g += g;
        sum_gx += g * xhat;
        dw[i] += dy[i] * xhat;
        db[i] += dy[i];
    }
    const float mean_g = sum_g / float(n), mean_gx = sum_gx / float(n);
    for (Index i = 0; i < n; ++i) {
        const float xhat = (x[i] - mu) * rs;
        dx[i] = rs * (dy[i] * w[i] - mean_g - xhat * mean_gx);
    }
}

// ---------------------------------------------------------------- one row, AVX2 (a scalar loop for the n % 8 tail)
__attribute__((target("avx2,fma"))) static void ln_forward_row_avx2(const float* x, const float* w, const float* b,
                                                                    float eps, float* y, float* mean, float* rstd,
                                                                    Index n) {
    const Index n8 = n - n % 8;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    Index i = 0;
    for (; i + 16 <= n8; i += 16) {
        acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(x + i));
        acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(x + i + 8));
    }
    for (; i < n8; i += 8) acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(x + i));
    float s = simd::hsum256(_mm256_add_ps(acc0, acc1));
    for (i = n8; i < n; ++i) s += x[i];
    const float mu = s / float(n);
    const __m256 vmu = _mm256_set1_ps(mu);
    acc0 = acc1 = _mm256_setzero_ps();
    for (i = 0; i + 16 <= n8; i += 16) {
        const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmu);
        acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        acc1 = _mm256_fmadd_ps(d1, d1, acc1);
    }
    for (; i < n8; i += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmu);
        acc0 = _mm256_fmadd_ps(d, d, acc0);
    }
    float ss = simd::hsum256(_mm256_add_ps(acc0, acc1));
    for (i = n8; i < n; ++i) ss += (x[i] - mu) * (x[i] - mu);
    const float rs = 1.f / std::sqrt(ss / float(n) + eps);
    const __m256 vrs = _mm256_set1_ps(rs);
    for (i = 0; i < n8; i += 8) {
        const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), vrs);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(xhat, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    for (; i < n; ++i) y[i] = (x[i] - mu) * rs * w[i] + b[i];
    *mean = mu;
    *rstd = rs;
}

__attribute__((target("avx2,fma"))) static void ln_backward_row_avx2(const float* dy, const float* x, const float* w,
                                                                     float mu, float rs, float* dx, float* dw,
                                                                     float* db, Index n) {
    const Index n8 = n - n % 8;
    const __m256 vmu = _mm256_set1_ps(mu), vrs = _mm256_set1_ps(rs);
    __m256 acc_g = _mm256_setzero_ps(), acc_gx = _mm256_setzero_ps();
    Index i = 0;
    for (; i < n8; i += 8) {
        const __m256 d = _mm256_loadu_ps(dy + i);
        const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), vrs);
        const __m256 g = _mm256_mul_ps(d, _mm256_loadu_ps(w + i));
        acc_g = _mm256_add_ps(acc_g, g);
        acc_gx = _mm256_fmadd_ps(g, xhat, acc_gx);
        _mm256_storeu_ps(dw + i, _mm256_fmadd_ps(d, xhat, _mm256_loadu_ps(dw + i)));
        _mm256_storeu_ps(db + i, _mm256_add_ps(d, _mm256_loadu_ps(db + i)));
    }
    float sum_g = simd::hsum256(acc_g), sum_gx = simd::hsum256(acc_gx);
    for (; i < n; ++i) {
        const float xhat = (x[i] - mu) * rs, g = dy[i] * w[i];
        sum_g += g;
        sum_gx += g * xhat;
        dw[i] += dy[i] * xhat;
        db[i] += dy[i];
    }
    const float mean_g = sum_g / float(n), mean_gx = sum_gx / float(n);
    const __m256 vmg = _mm256_set1_ps(mean_g), vmgx = _mm256_set1_ps(mean_gx);
    for (i = 0; i < n8; i += 8) {
        const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), vrs);
        const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(vrs, _mm256_sub_ps(_mm256_sub_ps(g, vmg), _mm256_mul_ps(xhat, vmgx))));
    }
    for (; i < n; ++i) {
        const float xhat = (x[i] - mu) * rs;
        dx[i] = rs * (dy[i] * w[i] - mean_g - xhat * mean_gx);
    }
}

// ---------------------------------------------------------------- all rows
void layer_norm_forward(const float* x, const float* w, const float* b, float eps, float* y, float* mean, float* rstd,
                        Index rows, Index n) {
    const bool avx2 = current_isa() != Isa::Scalar;
    for_rows(rows, n, [&](Index r0, Index r1) {
        for (Index r = r0; r < r1; ++r) {
            if (avx2) ln_forward_row_avx2(x + r * n, w, b, eps, y + r * n, mean + r, rstd + r, n);
            else ln_forward_row_scalar(x + r * n, w, b, eps, y + r * n, mean + r, rstd + r, n);
        }
    });
}

void layer_norm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                         float* dx, float* dw, float* db, Index rows, Index n) {
    const bool avx2 = current_isa() != Isa::Scalar;
    const int slots = for_row_slots(rows, n);
    // slot 0 sums straight into dw/db; the others into their own (dw, db) pair, added in slot order at the end
    // (fixed row ranges per slot: the same bits on every run)
    std::vector<float> extra(std::size_t(slots - 1) * 2 * n, 0.f);
    std::fill(dw, dw + n, 0.f);
    std::fill(db, db + n, 0.f);
    for_rows_slots(rows, n, [&](int slot, Index r0, Index r1) {
        float* dw_s = slot == 0 ? dw : extra.data() + (slot - 1) * 2 * n;
        float* db_s = slot == 0 ? db : dw_s + n;
        for (Index r = r0; r < r1; ++r) {
            if (avx2) ln_backward_row_avx2(dy + r * n, x + r * n, w, mean[r], rstd[r], dx + r * n, dw_s, db_s, n);
            else ln_backward_row_scalar(dy + r * n, x + r * n, w, mean[r], rstd[r], dx + r * n, dw_s, db_s, n);
        }
    });
    for (int slot = 1; slot < slots; ++slot) {
        const float* e = extra.data() + (slot - 1) * 2 * n;
        for (Index i = 0; i < n; ++i) {
            dw[i] += e[i];
            db[i] += e[n + i];
        }
    }
}

}  // namespace minitx
