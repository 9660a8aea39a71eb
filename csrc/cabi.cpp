// A plain C ABI entry point into the same shared object, for callers that use cffi/ctypes instead of
// pybind11 (see minitx/kernels.py::matmul_cffi and benchmarks/bench_binding_overhead.py).
// C (m×n) = A (m×k) · B (k×n), all row-major float32; runs the default rung. Returns 0, or -1 on a
// bad argument. No validation beyond that: the caller owns the pointers.
// Call overhead: benchmarks/results/binding_overhead.json.
#include <cstdint>

#include "matmul/matmul.h"

extern "C" __attribute__((visibility("default"))) int minitx_matmul_f32(const float* a, const float* b, float* c,
                                                                        std::int64_t m, std::int64_t k,
                                                                        std::int64_t n) {
    using namespace minitx;
    if (!a || !b || !c || m < 0 || k < 0 || n < 0) return -1;
    if (m == 0 || n == 0) return 0;
    gemm_v4_threads(m, n, k, MatRef{a, k, 1}, MatRef{b, n, 1}, c);
    return 0;
}
