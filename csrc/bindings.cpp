// pybind11 module minitx._C: the binding validates, the kernel computes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace py = pybind11;
using FloatArray = py::array_t<float, py::array::c_style>;

// softmax over the last axis, y_i = exp(x_i - max x) / sum_j exp(x_j - max x).
// Reference: minitx/backends/numpy_ref.py::softmax_forward
static void softmax_rows(const float* x, float* y, long rows, long n) {
    for (long r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        float m = -INFINITY;
        for (long i = 0; i < n; ++i) m = std::max(m, xr[i]);
        float s = 0.f;
        for (long i = 0; i < n; ++i) { yr[i] = std::exp(xr[i] - m); s += yr[i]; }
        const float inv = 1.f / s;
        for (long i = 0; i < n; ++i) yr[i] *= inv;
    }
}

static FloatArray softmax_forward(py::array x_obj) {
    if (!py::isinstance<FloatArray>(x_obj) || !(x_obj.flags() & py::array::c_style))
        throw py::value_error("softmax_forward: x must be a C-contiguous float32 array");
    auto x = x_obj.cast<FloatArray>();
    if (x.ndim() == 0) throw py::value_error("softmax_forward: x must have at least 1 dimension");
    FloatArray y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const long n = x.shape(x.ndim() - 1);
    const long rows = n ? x.size() / n : 0;
    {
        py::gil_scoped_release release;
        softmax_rows(x.data(), y.mutable_data(), rows, n);
    }
    return y;
}

PYBIND11_MODULE(_C, m) {
    m.doc() = "minitx C++ kernels";
    m.def("softmax_forward", &softmax_forward, py::arg("x"));
}
