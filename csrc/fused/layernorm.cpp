// Fused layer norm (Ba, Kiros & Hinton, 2016) over the last axis, forward and backward.
//   forward:  y = (x - mean) · rstd · w + b,  rstd = 1/sqrt(var + eps)   (two-pass variance: stable)
//   backward: xhat = (x - mean)·rstd, g = dy·w,
//             dx = rstd · (g - mean(g) - xhat · mean(g·xhat)),  dw = Σ_rows dy·xhat,  db = Σ_rows dy
// dw/db are summed per thread into private buffers, then added up (no atomics).
// Reference: minitx/backends/numpy_ref.py::layer_norm_forward / layer_norm_backward
#include <cmath>
#include <mutex>
#include <vector>

#include "fused/fused.h"
#include "simd.h"

namespace minitx {

void layer_norm_forward(const float* x, const float* w, const float* b, float eps, float* y, float* mean, float* rstd,
                        Index rows, Index n) {
    for_rows(rows, n, [&](Index r0, Index r1) {
        std::vector<float> centered(n);
        for (Index r = r0; r < r1; ++r) {
            const float* xr = x + r * n;
            float* yr = y + r * n;
            const float mu = simd::sum(xr, n) / float(n);
            for (Index i = 0; i < n; ++i) centered[i] = xr[i] - mu;
            const float var = simd::dot(centered.data(), centered.data(), n) / float(n);
            const float rs = 1.f / std::sqrt(var + eps);
            for (Index i = 0; i < n; ++i) yr[i] = centered[i] * rs * w[i] + b[i];
            mean[r] = mu;
            rstd[r] = rs;
        }
    });
}

void layer_norm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                         float* dx, float* dw, float* db, Index rows, Index n) {
    for (Index i = 0; i < n; ++i) dw[i] = db[i] = 0.f;
    std::mutex reduce;
    for_rows(rows, n, [&](Index r0, Index r1) {
        std::vector<float> xhat(n), g(n), dw_local(n, 0.f), db_local(n, 0.f);
        for (Index r = r0; r < r1; ++r) {
            const float* xr = x + r * n;
            const float* dyr = dy + r * n;
            const float mu = mean[r], rs = rstd[r];
            for (Index i = 0; i < n; ++i) {
                xhat[i] = (xr[i] - mu) * rs;
                g[i] = dyr[i] * w[i];
                dw_local[i] += dyr[i] * xhat[i];
                db_local[i] += dyr[i];
            }
            const float mean_g = simd::sum(g.data(), n) / float(n);
            const float mean_gx = simd::dot(g.data(), xhat.data(), n) / float(n);
            float* out = dx + r * n;
            for (Index i = 0; i < n; ++i) out[i] = rs * (g[i] - mean_g - xhat[i] * mean_gx);
        }
        std::lock_guard<std::mutex> lock(reduce);
        for (Index i = 0; i < n; ++i) {
            dw[i] += dw_local[i];
            db[i] += db_local[i];
        }
    });
}

}  // namespace minitx
