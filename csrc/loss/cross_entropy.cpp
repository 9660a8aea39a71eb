// Softmax cross-entropy, fused: log-softmax + NLL (+ label smoothing ε, ignore_index) in one kernel per pass.
//   lse_n  = m_n + log Σ_c exp(x_nc - m_n),  m_n = max_c x_nc         (logsumexp; the max keeps exp finite)
//   loss_n = (1 - ε)(lse_n - x_{n,t}) + ε (lse_n - mean_c x_nc)   (= -Σ_c q_c log p_c, q = (1-ε) onehot(t) + ε/C)
//   dx_nc  = dloss_n (exp(x_nc - lse_n) - q_c)
// Memory, not arithmetic, is the cost at a vocabulary of 30-50k classes: 2048 × 30522 logits are 250 MB.
// NumPy's (and torch's) log_softmax writes the (N, C) log-probabilities in the forward and reads them back in
// the backward. Here the forward only reads the logits and keeps two numbers per row (loss, lse); the backward
// recomputes softmax from the logits and lse (the flash-attention trade: an exp is cheaper than a round trip
// of the row through memory) and writes the gradient, into a new array: the logits are often seen by others (a
// model returns them), so they are not overwritten. The forward reads each row twice (max, then exp), the second
// time from L2 (a row of 30522 floats is 122 KB). Rows are split over threads (for_rows).
// Ignored rows are never read: loss 0, lse 0 and a zero gradient, whatever they hold (BERT's masked-LM loss
// keeps ~15% of its rows).
// lse is float64: the backward's exp(x - lse) must not lose the precision log p has in float32 when the logits
// are far from 0 (ulp(1000) = 6e-5 would be a 6e-5 relative error in p). It is split into hi = float(lse) and
// lo = lse - hi, and exp(x - lse) = exp(x - hi) · exp(-lo): the float shift and one factor per row.
// Edge values as torch: a NaN logit in a kept row, or a row of only -inf, gives a NaN loss and a NaN gradient
// row (simd::max and exp propagate NaN; -inf - (-inf) = NaN); a -inf logit on another class costs nothing
// unless ε > 0 (then its -log p = inf enters the smoothing term, which is only formed when ε > 0).
// Speed: benchmarks/results/losses.json.
// Reference: minitx/backends/numpy_ref.py::cross_entropy_forward / cross_entropy_backward
#include <algorithm>
#include <cmath>

#include "loss/loss.h"
#include "simd.h"
#include "simd_avx2.h"

namespace minitx {

// Σ_c exp(x_c + shift), and when kWrite, out_c = a · exp(x_c + shift) + b: the forward's sum and the backward's
// gradient row are one loop. Same exp as simd::exp_shift_sum (exp256 on AVX2, std::exp on the scalar path,
// arguments below -87.3 give 0, NaN stays NaN).
template <bool kWrite>
__attribute__((target("avx2,fma"))) static float exp_row_avx2(const float* x, float shift, float a, float b,
                                                              float* out, Index n) {
    const __m256 vs = _mm256_set1_ps(shift), va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    Index i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 e0 = simd::exp256(_mm256_add_ps(_mm256_loadu_ps(x + i), vs));
        const __m256 e1 = simd::exp256(_mm256_add_ps(_mm256_loadu_ps(x + i + 8), vs));
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
        if (kWrite) {
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(e0, va, vb));
            _mm256_storeu_ps(out + i + 8, _mm256_fmadd_ps(e1, va, vb));
        }
    }
    for (; i < n; i += 8) {  // the last 1-15 elements, 8 lanes at a time under a mask
        const __m256i mask = simd::lanes_below(long(n - i));
        const __m256 e = _mm256_and_ps(simd::exp256(_mm256_add_ps(_mm256_maskload_ps(x + i, mask), vs)),
                                       _mm256_castsi256_ps(mask));
        acc0 = _mm256_add_ps(acc0, e);
        if (kWrite) _mm256_maskstore_ps(out + i, mask, _mm256_fmadd_ps(e, va, vb));
    }
    return simd::hsum256(_mm256_add_ps(acc0, acc1));
}

template <bool kWrite>
static float exp_row_scalar(const float* x, float shift, float a, float b, float* out, Index n) {
    float s = 0.f;
    for (Index i = 0; i < n; ++i) {
        const float t = x[i] + shift;
        const float e = t < -87.3365f ? 0.f : std::exp(t);
        s += e;
        if (kWrite) out[i] = a * e + b;
    }
    return s;
}

template <bool kWrite>
static float exp_row(const float* x, float shift, float a, float b, float* out, Index n) {
    return current_isa() != Isa::Scalar ? exp_row_avx2<kWrite>(x, shift, a, b, out, n)
                                        : exp_row_scalar<kWrite>(x, shift, a, b, out, n);
}

// Σ_c exp(x_c + shift) over a whole row: float sums over blocks of kSumBlock classes, added in double. A float
// running sum of 30522 terms drifts by ~1e-5 relative (the reference's pairwise sum is ~1e-7); per block the
// drift stays ~1e-7, and the block sums cost one double add per 256 exponentials.
static constexpr Index kSumBlock = 256;

static double exp_sum(const float* x, float shift, Index n) {
    double s = 0.0;
    for (Index c0 = 0; c0 < n; c0 += kSumBlock)
        s += exp_row<false>(x + c0, shift, 0.f, 0.f, nullptr, std::min(kSumBlock, n - c0));
    return s;
}

void cross_entropy_forward(const float* logits, const std::int64_t* target, float* loss, double* lse, Index rows,
                           Index classes, std::int64_t ignore_index, float label_smoothing) {
    const float eps = label_smoothing;
    for_rows(rows, classes, [&](Index r0, Index r1) {
        for (Index r = r0; r < r1; ++r) {
            if (target[r] == ignore_index) {
                loss[r] = 0.f;
                lse[r] = 0.0;
                continue;
            }
            const float* x = logits + r * classes;
            const float m = simd::max(x, classes);
            const double log_sum = std::log(exp_sum(x, -m, classes));
            float l = float(log_sum) + (m - x[target[r]]);  // -log p_t
            if (eps > 0) l = (1.f - eps) * l + eps * (float(log_sum) + (m - simd::sum(x, classes) / float(classes)));
            loss[r] = l;
            lse[r] = double(m) + log_sum;
        }
    });
}

void cross_entropy_backward(const float* dloss, const float* logits, const double* lse, const std::int64_t* target,
                            float* dlogits, Index rows, Index classes, std::int64_t ignore_index,
                            float label_smoothing) {
    const float eps = label_smoothing;
    for_rows(rows, classes, [&](Index r0, Index r1) {
        for (Index r = r0; r < r1; ++r) {
            float* dx = dlogits + r * classes;
            if (target[r] == ignore_index) {
                std::fill(dx, dx + classes, 0.f);
                continue;
            }
            const float hi = float(lse[r]), lo = float(lse[r] - double(hi)), dl = dloss[r];
            // dx_c = dl · exp(x_c - hi) · exp(-lo) - dl · ε/C, then the target's -dl (1 - ε)
            exp_row<true>(logits + r * classes, -hi, dl * float(std::exp(-double(lo))), -dl * eps / float(classes),
                          dx, classes);
            dx[target[r]] -= dl * (1.f - eps);
        }
    });
}

}  // namespace minitx
