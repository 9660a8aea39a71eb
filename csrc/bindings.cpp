// pybind11 module minitx._C: the binding validates, the kernel computes.
// Every entry point checks dtype (float32), contiguity (C order), dimensions and shapes, and raises
// ValueError naming the function and both shapes. Inputs are never copied; outputs are new arrays (the
// large ones in blocks of the output cache, see new_output).
// The GIL is released around each compute loop, except for tiny 2-D matmuls (see matmul_2d_lean).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "common.h"
#include "fused/fused.h"
#include "loss/loss.h"
#include "matmul/matmul.h"
#include "optim/optim.h"
#include "output_cache.h"

namespace py = pybind11;
using namespace minitx;
using FloatArray = py::array_t<float, py::array::c_style>;
using Shape = std::vector<py::ssize_t>;

// ---------------------------------------------------------------- validation helpers
static std::string shape_str(const Shape& s) {
    std::ostringstream o;
    o << "(";
    for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
    o << (s.size() == 1 ? ",)" : ")");
    return o.str();
}

static Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

// x.shape[:-1] (the rows of a kernel over the last axis) and their number, 1 for a 1-D x.
static Shape row_shape_of(const py::array& x) { return Shape(x.shape(), x.shape() + x.ndim() - 1); }
static Index rows_of(const py::array& x) {
    Index rows = 1;
    for (auto d : row_shape_of(x)) rows *= d;
    return rows;
}

[[noreturn]] static void fail(const std::string& msg) { throw py::value_error(msg); }

// ---------------------------------------------------------------- outputs
// A new C-contiguous float32 array for a kernel to fill. From kMinCachedBytes up, while the cache is on, it
// lives in a block of the output cache (csrc/output_cache.h), given back when the array and every view of
// it are freed (the block's owner is the array's base capsule); other outputs come from NumPy's allocator.
struct CachedBlock {
    void* p;
    std::size_t bytes;
};

static FloatArray new_output(const Shape& shape) {
    std::size_t count = 1;
    for (auto d : shape) count *= std::size_t(d);
    if (count * sizeof(float) < kMinCachedBytes || !output_cache_enabled()) return FloatArray(shape);
    std::size_t rounded;
    void* block = output_cache_take(count * sizeof(float), &rounded);
    py::capsule owner(new CachedBlock{block, rounded}, [](void* p) {
        auto* b = static_cast<CachedBlock*>(p);
        output_cache_give(b->p, b->bytes);
        delete b;
    });
    return FloatArray(shape, static_cast<const float*>(block), owner);
}

// The argument as a C-contiguous array of T (float32, or float64 / int64 where a kernel says so), no copy,
// or ValueError.
template <typename T>
static py::array_t<T, py::array::c_style> typed(const py::handle& obj, const char* fn, const char* name) {
    if (!py::isinstance<py::array>(obj))
        fail(std::string(fn) + ": " + name + " must be a numpy.ndarray, got " +
             std::string(py::str(py::type::handle_of(obj))));
    auto arr = py::reinterpret_borrow<py::array>(obj);
    if (!arr.dtype().equal(py::dtype::of<T>()))
        fail(std::string(fn) + ": " + name + " must be " + std::string(py::str(py::dtype::of<T>())) + ", got " +
             std::string(py::str(arr.dtype())) + " with shape " + shape_str(shape_of(arr)));
    if (!(arr.flags() & py::array::c_style))
        fail(std::string(fn) + ": " + name + " must be C-contiguous (use np.ascontiguousarray), shape " +
             shape_str(shape_of(arr)));
    return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(arr);
}

static FloatArray f32(const py::handle& obj, const char* fn, const char* name) { return typed<float>(obj, fn, name); }

static void same_shape(const py::array& a, const py::array& b, const char* fn, const char* na, const char* nb) {
    if (shape_of(a) != shape_of(b))
        fail(std::string(fn) + ": " + na + " and " + nb + " must have the same shape, " + na + " is " +
             shape_str(shape_of(a)) + ", " + nb + " is " + shape_str(shape_of(b)));
}

static void min_ndim(const py::array& a, int n, const char* fn, const char* name) {
    if (a.ndim() < n)
        fail(std::string(fn) + ": " + name + " needs at least " + std::to_string(n) + " dimension(s), got shape " +
             shape_str(shape_of(a)));
}

// ---------------------------------------------------------------- matmul (+ transposed variants)
enum class Trans { NN, TN, NT };  // C = A·B, Aᵀ·B, A·Bᵀ

// The lean path for the most common call, two plain 2-D float32 arrays: it reads the array headers directly
// (no dtype objects, no shape vectors, no batch tables) and keeps the GIL for products under
// kTinyMatmulFlops, where releasing and re-taking it costs more than the arithmetic. Anything else,
// errors included, takes the general path below. Call overhead: benchmarks/results/binding_overhead.json.
static constexpr double kTinyMatmulFlops = 32768;

static bool plain_2d_f32(py::handle h) {
    if (!py::detail::npy_api::get().PyArray_Check_(h.ptr())) return false;
    const auto* p = py::detail::array_proxy(h.ptr());
    const auto* d = py::detail::array_descriptor_proxy(p->descr);
    constexpr int need = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    return p->nd == 2 && (p->flags & need) == need && d->type_num == py::detail::npy_api::NPY_FLOAT_ &&
           d->byteorder != '>';
}

static py::object matmul_2d_lean(py::handle a_obj, py::handle b_obj, int version, Trans tr) {
    const auto* a = py::detail::array_proxy(a_obj.ptr());
    const auto* b = py::detail::array_proxy(b_obj.ptr());
    const Index ra = a->dimensions[0], ca = a->dimensions[1], rb = b->dimensions[0], cb = b->dimensions[1];
    const Index M = tr == Trans::TN ? ca : ra, Ka = tr == Trans::TN ? ra : ca;
    const Index N = tr == Trans::NT ? rb : cb, Kb = tr == Trans::NT ? cb : rb;
    if (Ka != Kb) return py::object();  // the general path raises the error
    FloatArray c = new_output(Shape{M, N});
    const Index rsa = tr == Trans::TN ? 1 : ca, csa = tr == Trans::TN ? ca : 1;
    const Index rsb = tr == Trans::NT ? 1 : cb, csb = tr == Trans::NT ? cb : 1;
    const auto* pa = reinterpret_cast<const float*>(a->data);
    const auto* pb = reinterpret_cast<const float*>(b->data);
    const Index zero = 0;
    if (M * N == 0) return std::move(c);
    if (2.0 * M * N * Ka < kTinyMatmulFlops) {
        gemm_batched(version, 1, M, N, Ka, pa, &zero, rsa, csa, pb, &zero, rsb, csb, c.mutable_data());
    } else {
        py::gil_scoped_release release;
        gemm_batched(version, 1, M, N, Ka, pa, &zero, rsa, csa, pb, &zero, rsb, csb, c.mutable_data());
    }
    return std::move(c);
}

static py::object matmul_impl(py::handle a_obj, py::handle b_obj, int version, Trans tr, const char* fn) {
    if (version >= 0 && version < kMatmulVersions && plain_2d_f32(a_obj) && plain_2d_f32(b_obj)) {
        py::object c = matmul_2d_lean(a_obj, b_obj, version, tr);
        if (c) return c;
    }
    auto a = f32(a_obj, fn, "a"), b = f32(b_obj, fn, "b");
    min_ndim(a, 2, fn, "a");
    min_ndim(b, 2, fn, "b");
    if (version < 0 || version >= kMatmulVersions)
        fail(std::string(fn) + ": version must be 0.." + std::to_string(kMatmulVersions - 1) + ", got " +
             std::to_string(version));
    const Index ra = a.shape(a.ndim() - 2), ca = a.shape(a.ndim() - 1);
    const Index rb = b.shape(b.ndim() - 2), cb = b.shape(b.ndim() - 1);
    const Index M = tr == Trans::TN ? ca : ra, Ka = tr == Trans::TN ? ra : ca;
    const Index N = tr == Trans::NT ? rb : cb, Kb = tr == Trans::NT ? cb : rb;
    if (Ka != Kb)
        fail(std::string(fn) + ": inner dimensions differ: a is " + shape_str(shape_of(a)) + ", b is " +
             shape_str(shape_of(b)));
    // Broadcast the batch axes (NumPy rules, aligned on the right).
    const int nb = std::max(a.ndim(), b.ndim()) - 2;
    Shape batch(nb);
    std::vector<Index> a_stride(nb, 0), b_stride(nb, 0);
    Index sa = ra * ca, sb = rb * cb;
    for (int d = nb - 1; d >= 0; --d) {
        const int da = d - (nb - (a.ndim() - 2)), db = d - (nb - (b.ndim() - 2));
        const Index la = da >= 0 ? a.shape(da) : 1, lb = db >= 0 ? b.shape(db) : 1;
        if (la != lb && la != 1 && lb != 1)
            fail(std::string(fn) + ": batch dimensions cannot broadcast: a is " + shape_str(shape_of(a)) + ", b is " +
                 shape_str(shape_of(b)));
        batch[d] = la == 1 ? lb : la;  // a length 1 stretches to the other's, 0 included
        if (la != 1) a_stride[d] = sa;
        if (lb != 1) b_stride[d] = sb;
        sa *= la;
        sb *= lb;
    }
    Index n_batch = 1;
    for (auto s : batch) n_batch *= s;
    std::vector<Index> a_off(n_batch), b_off(n_batch);
    for (Index idx = 0; idx < n_batch; ++idx) {
        Index rem = idx, oa = 0, ob = 0;
        for (int d = nb - 1; d >= 0; --d) {
            const Index i = rem % batch[d];
            rem /= batch[d];
            oa += i * a_stride[d];
            ob += i * b_stride[d];
        }
        a_off[idx] = oa;
        b_off[idx] = ob;
    }
    Shape out_shape = batch;
    out_shape.push_back(M);
    out_shape.push_back(N);
    FloatArray c = new_output(out_shape);
    // Element (i, k) of A and (k, j) of B through strides: the transposes are only a stride swap.
    const Index rsa = tr == Trans::TN ? 1 : ca, csa = tr == Trans::TN ? ca : 1;
    const Index rsb = tr == Trans::NT ? 1 : cb, csb = tr == Trans::NT ? cb : 1;
    // Products through one B (broadcast over every batch axis, as the weight in x @ Wᵀ for x (B, L, H)) are one
    // product of n_batch·M rows: A's batches are adjacent rows (A is C-contiguous), and so are C's. Taken whole,
    // the kernel picks its path by the real row count (a decoder step of 8 sequences is 8 rows, not 8 products
    // of one row that each read all of B) and packs B once. Not for Aᵀ·B, whose rows are A's columns.
    const bool one_product = tr != Trans::TN && std::all_of(b_stride.begin(), b_stride.end(), [](Index s) { return s == 0; });
    const Index zero = 0;
    if (n_batch * M * N > 0) {
        py::gil_scoped_release release;
        if (one_product)
            gemm_batched(version, 1, n_batch * M, N, Ka, a.data(), &zero, rsa, csa, b.data(), &zero, rsb, csb,
                         c.mutable_data());
        else
            gemm_batched(version, n_batch, M, N, Ka, a.data(), a_off.data(), rsa, csa, b.data(), b_off.data(), rsb,
                         csb, c.mutable_data());
    }
    return c;
}

// ---------------------------------------------------------------- softmax
static FloatArray softmax_fwd(py::handle x_obj) {
    auto x = f32(x_obj, "softmax_forward", "x");
    min_ndim(x, 1, "softmax_forward", "x");
    FloatArray y = new_output(shape_of(x));
    py::gil_scoped_release release;
    softmax_forward(x.data(), y.mutable_data(), rows_of(x), x.shape(x.ndim() - 1));
    return y;
}

static FloatArray softmax_bwd(py::handle dy_obj, py::handle y_obj) {
    auto dy = f32(dy_obj, "softmax_backward", "dy"), y = f32(y_obj, "softmax_backward", "y");
    min_ndim(y, 1, "softmax_backward", "y");
    same_shape(dy, y, "softmax_backward", "dy", "y");
    FloatArray dx = new_output(shape_of(y));
    py::gil_scoped_release release;
    softmax_backward(dy.data(), y.data(), dx.mutable_data(), rows_of(y), y.shape(y.ndim() - 1));
    return dx;
}

// ---------------------------------------------------------------- layer norm
static void check_param(const py::array& p, Index n, const py::array& x, const char* fn, const char* name) {
    if (p.ndim() != 1 || p.shape(0) != n)
        fail(std::string(fn) + ": " + name + " has shape " + shape_str(shape_of(p)) + ", expected (" +
             std::to_string(n) + ",) for x of shape " + shape_str(shape_of(x)));
}

// mean / rstd as layer_norm_forward made them: x.shape[:-1]. For a 1-D x that is (), and (1,) is taken
// too: np.ascontiguousarray, which callers apply to every input, turns a 0-d array into shape (1,).
static void check_row_stat(const py::array& stat, const py::array& x, const char* fn, const char* name) {
    const Shape expected = row_shape_of(x);
    if (shape_of(stat) == expected || (x.ndim() == 1 && shape_of(stat) == Shape{1})) return;
    fail(std::string(fn) + ": " + name + " has shape " + shape_str(shape_of(stat)) + ", expected " +
         shape_str(expected) + " for x of shape " + shape_str(shape_of(x)));
}

static py::tuple layer_norm_fwd(py::handle x_obj, py::handle w_obj, py::handle b_obj, double eps) {
    const char* fn = "layer_norm_forward";
    auto x = f32(x_obj, fn, "x"), w = f32(w_obj, fn, "weight"), b = f32(b_obj, fn, "bias");
    min_ndim(x, 1, fn, "x");
    const Index n = x.shape(x.ndim() - 1);
    check_param(w, n, x, fn, "weight");
    check_param(b, n, x, fn, "bias");
    if (!(eps >= 0)) fail(std::string(fn) + ": eps must be >= 0, got " + std::to_string(eps));
    // mean and rstd: x.shape[:-1], () for a 1-D x (NaN for an empty last axis: the mean of nothing)
    FloatArray y = new_output(shape_of(x)), mean(row_shape_of(x)), rstd(row_shape_of(x));
    {
        py::gil_scoped_release release;
        layer_norm_forward(x.data(), w.data(), b.data(), float(eps), y.mutable_data(), mean.mutable_data(),
                           rstd.mutable_data(), rows_of(x), n);
    }
    return py::make_tuple(y, mean, rstd);
}

static py::tuple layer_norm_bwd(py::handle dy_obj, py::handle x_obj, py::handle w_obj, py::handle mean_obj,
                                py::handle rstd_obj) {
    const char* fn = "layer_norm_backward";
    auto dy = f32(dy_obj, fn, "dy"), x = f32(x_obj, fn, "x"), w = f32(w_obj, fn, "weight");
    auto mean = f32(mean_obj, fn, "mean"), rstd = f32(rstd_obj, fn, "rstd");
    min_ndim(x, 1, fn, "x");
    same_shape(dy, x, fn, "dy", "x");
    const Index n = x.shape(x.ndim() - 1);
    check_param(w, n, x, fn, "weight");
    check_row_stat(mean, x, fn, "mean");
    check_row_stat(rstd, x, fn, "rstd");
    FloatArray dx = new_output(shape_of(x)), dw(Shape{n}), db(Shape{n});
    {
        py::gil_scoped_release release;
        layer_norm_backward(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.mutable_data(),
                            dw.mutable_data(), db.mutable_data(), rows_of(x), n);
    }
    return py::make_tuple(dx, dw, db);
}

// ---------------------------------------------------------------- GELU
static GeluForm gelu_form(const std::string& approximate, const char* fn) {
    if (approximate == "none") return GeluForm::Erf;
    if (approximate == "tanh") return GeluForm::Tanh;
    fail(std::string(fn) + ": approximate must be 'none' or 'tanh', got '" + approximate + "'");
}

static FloatArray gelu_fwd(py::handle x_obj, const std::string& approximate) {
    const GeluForm form = gelu_form(approximate, "gelu_forward");
    auto x = f32(x_obj, "gelu_forward", "x");
    FloatArray y = new_output(shape_of(x));
    py::gil_scoped_release release;
    gelu_forward(x.data(), y.mutable_data(), x.size(), form);
    return y;
}

static FloatArray gelu_bwd(py::handle dy_obj, py::handle x_obj, const std::string& approximate) {
    const GeluForm form = gelu_form(approximate, "gelu_backward");
    auto dy = f32(dy_obj, "gelu_backward", "dy"), x = f32(x_obj, "gelu_backward", "x");
    same_shape(dy, x, "gelu_backward", "dy", "x");
    FloatArray dx = new_output(shape_of(x));
    py::gil_scoped_release release;
    gelu_backward(dy.data(), x.data(), dx.mutable_data(), x.size(), form);
    return dx;
}

// ---------------------------------------------------------------- attention
static void check_4d(const py::array& a, const char* fn, const char* name) {
    if (a.ndim() != 4) fail(std::string(fn) + ": " + name + " must be 4-D (B, H, L, D), got shape " + shape_str(shape_of(a)));
}

static AttnShape attention_shape(const py::array& q, const py::array& k, const py::array& v, bool causal,
                                 py::object scale, const char* fn) {
    check_4d(q, fn, "q");
    check_4d(k, fn, "k");
    check_4d(v, fn, "v");
    if (k.shape(0) != q.shape(0) || k.shape(1) != q.shape(1) || k.shape(3) != q.shape(3))
        fail(std::string(fn) + ": k must be (B, H, Lk, D) matching q's B, H, D: q is " + shape_str(shape_of(q)) +
             ", k is " + shape_str(shape_of(k)));
    if (v.shape(0) != k.shape(0) || v.shape(1) != k.shape(1) || v.shape(2) != k.shape(2))
        fail(std::string(fn) + ": v must be (B, H, Lk, Dv) matching k: k is " + shape_str(shape_of(k)) + ", v is " +
             shape_str(shape_of(v)));
    if (q.shape(3) == 0) fail(std::string(fn) + ": head dimension D must be > 0, q is " + shape_str(shape_of(q)));
    AttnShape s{q.shape(0), q.shape(1), q.shape(2), k.shape(2), q.shape(3), v.shape(3), causal, 0.f};
    s.scale = scale.is_none() ? float(1.0 / std::sqrt(double(s.D))) : scale.cast<float>();
    return s;
}

// The mask broadcast to (B,H,Lq,Lk) by strides; `keep_alive` holds the array while the kernel runs.
static AttnMask attention_mask(py::object mask_obj, const AttnShape& s, const char* fn, py::array* keep_alive) {
    AttnMask m;
    if (mask_obj.is_none()) return m;
    if (!py::isinstance<py::array>(mask_obj))
        fail(std::string(fn) + ": mask must be a numpy.ndarray or None, got " +
             std::string(py::str(py::type::handle_of(mask_obj))));
    auto arr = py::reinterpret_borrow<py::array>(mask_obj);
    const bool is_bool = arr.dtype().equal(py::dtype::of<bool>());
    if (!is_bool && !arr.dtype().equal(py::dtype::of<float>()))
        fail(std::string(fn) + ": mask must be bool (True = attend) or float32 (additive), got " +
             std::string(py::str(arr.dtype())));
    if (!(arr.flags() & py::array::c_style)) fail(std::string(fn) + ": mask must be C-contiguous");
    const Shape target{s.B, s.H, s.Lq, s.Lk};
    if (arr.ndim() > 4) fail(std::string(fn) + ": mask of shape " + shape_str(shape_of(arr)) +
                             " is not broadcastable to " + shape_str(target));
    Index strides[4] = {0, 0, 0, 0}, stride = 1;
    for (int d = 3; d >= 0; --d) {
        const int md = d - (4 - int(arr.ndim()));
        const Index len = md >= 0 ? arr.shape(md) : 1;
        if (len != 1 && len != target[d])
            fail(std::string(fn) + ": mask of shape " + shape_str(shape_of(arr)) + " is not broadcastable to " +
                 shape_str(target));
        if (len != 1) strides[d] = stride;
        stride *= len;
    }
    m.s_b = strides[0];
    m.s_h = strides[1];
    m.s_q = strides[2];
    m.s_k = strides[3];
    if (is_bool) m.keep = static_cast<const bool*>(arr.data());
    else m.add = static_cast<const float*>(arr.data());
    *keep_alive = arr;
    return m;
}

// Attention dropout from (p, seed); p in [0, 1) (p = 1 keeps nothing: the caller's unfused path handles it).
static AttnDropout attention_dropout(double p, py::int_ seed_obj, const char* fn) {
    if (!(p >= 0.0 && p < 1.0))
        throw py::value_error(std::string(fn) + ": dropout_p must be in [0, 1), got " + std::to_string(p));
    AttnDropout drop;
    if (p == 0.0) return drop;
    if (seed_obj < py::int_(0)) throw py::value_error(std::string(fn) + ": dropout_seed must be >= 0");
    drop.on = true;
    drop.seed = seed_obj.cast<std::uint64_t>();
    drop.threshold = std::uint32_t(p * 16777216.0);  // floor(p · 2²⁴), as numpy_ref.attention_dropout_scale
    drop.scale = float(1.0 / (1.0 - p));
    return drop;
}

// k or v of the forward: read in place when `in_place` and it is a 4-D float32 array whose heads each hold
// contiguous rows (a KV cache's prefix, a broadcast), else as a C-contiguous float32 array (copied if strided).
struct HeadsArg {
    py::array arr;
    HeadRows rows;
};

static HeadsArg heads_arg(py::handle obj, bool in_place, const char* fn, const char* name) {
    if (in_place && py::isinstance<py::array>(obj)) {
        auto a = py::reinterpret_borrow<py::array>(obj);
        const Index e = sizeof(float);
        const bool rows_contiguous = a.ndim() == 4 && a.dtype().equal(py::dtype::of<float>()) &&
                                     (a.strides(3) == e || a.shape(3) <= 1) &&
                                     (a.strides(2) == a.shape(3) * e || a.shape(2) <= 1) && a.strides(0) >= 0 &&
                                     a.strides(1) >= 0 && a.strides(0) % e == 0 && a.strides(1) % e == 0 &&
                                     reinterpret_cast<std::uintptr_t>(a.data()) % e == 0;
        if (rows_contiguous)
            return {a, HeadRows{static_cast<const float*>(a.data()), a.strides(0) / e, a.strides(1) / e}};
    }
    // a strided float32 view (a cache prefix for the flash kernel) is copied here; other dtypes are refused by f32
    const bool strided = py::isinstance<py::array>(obj) && !(py::reinterpret_borrow<py::array>(obj).flags() & py::array::c_style);
    FloatArray c = f32(strided ? py::handle(py::array::ensure(obj, py::array::c_style)) : obj, fn, name);
    const Index head = c.ndim() == 4 ? c.shape(2) * c.shape(3) : 0;
    return {c, HeadRows{c.data(), c.ndim() == 4 ? c.shape(1) * head : 0, head}};
}

// Decoding steps (a few queries, no dropout) read K and V in place (decode.cpp); everything else runs the flash
// kernel on contiguous copies.
static py::tuple attention_fwd(py::handle q_obj, py::handle k_obj, py::handle v_obj, py::object mask, bool causal,
                               py::object scale, double dropout_p, py::int_ dropout_seed) {
    const char* fn = "attention_forward";
    const AttnDropout drop = attention_dropout(dropout_p, dropout_seed, fn);
    auto q = f32(q_obj, fn, "q");
    const bool decoding = q.ndim() == 4 && decode_fits(q.shape(2), drop);  // (attention_shape refuses other q)
    const HeadsArg k = heads_arg(k_obj, decoding, fn, "k"), v = heads_arg(v_obj, decoding, fn, "v");
    const AttnShape s = attention_shape(q, k.arr, v.arr, causal, scale, fn);
    py::array mask_arr;
    const AttnMask m = attention_mask(mask, s, fn, &mask_arr);
    FloatArray out = new_output(Shape{s.B, s.H, s.Lq, s.Dv}), lse(Shape{s.B, s.H, s.Lq});
    {
        py::gil_scoped_release release;
        if (decoding)
            decode_attention_forward(s, q.data(), k.rows, v.rows, m, out.mutable_data(), lse.mutable_data());
        else
            flash_attention_forward(s, q.data(), k.rows.p, v.rows.p, m, drop, out.mutable_data(), lse.mutable_data());
    }
    return py::make_tuple(out, lse);
}

static py::tuple attention_bwd(py::handle dout_obj, py::handle q_obj, py::handle k_obj, py::handle v_obj,
                               py::handle out_obj, py::handle lse_obj, py::object mask, bool causal, py::object scale,
                               double dropout_p, py::int_ dropout_seed) {
    const char* fn = "attention_backward";
    const AttnDropout drop = attention_dropout(dropout_p, dropout_seed, fn);
    auto q = f32(q_obj, fn, "q"), k = f32(k_obj, fn, "k"), v = f32(v_obj, fn, "v");
    auto dout = f32(dout_obj, fn, "dout"), out = f32(out_obj, fn, "out"), lse = f32(lse_obj, fn, "lse");
    const AttnShape s = attention_shape(q, k, v, causal, scale, fn);
    const Shape out_shape{s.B, s.H, s.Lq, s.Dv}, lse_shape{s.B, s.H, s.Lq};
    if (shape_of(out) != out_shape)
        fail(std::string(fn) + ": out has shape " + shape_str(shape_of(out)) + ", expected " + shape_str(out_shape));
    same_shape(dout, out, fn, "dout", "out");
    if (shape_of(lse) != lse_shape)
        fail(std::string(fn) + ": lse has shape " + shape_str(shape_of(lse)) + ", expected " + shape_str(lse_shape));
    py::array mask_arr;
    const AttnMask m = attention_mask(mask, s, fn, &mask_arr);
    FloatArray dq = new_output(shape_of(q)), dk = new_output(shape_of(k)), dv = new_output(shape_of(v));
    {
        py::gil_scoped_release release;
        flash_attention_backward(s, dout.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), m, drop,
                                 dq.mutable_data(), dk.mutable_data(), dv.mutable_data());
    }
    return py::make_tuple(dq, dk, dv);
}

// ---------------------------------------------------------------- cross-entropy
static FloatArray writeable_f32(py::handle obj, const char* fn, const char* name);
using Int64Array = py::array_t<std::int64_t, py::array::c_style>;
using DoubleArray = py::array_t<double, py::array::c_style>;

// logits (N, C) with C >= 1, and a per-row array of logits' N rows: the shapes every cross-entropy call checks.
static void check_logits(const py::array& logits, const char* fn) {
    if (logits.ndim() != 2 || logits.shape(1) == 0)
        fail(std::string(fn) + ": logits must be 2-D (N, C) with C >= 1, got shape " + shape_str(shape_of(logits)));
}

static void check_per_row(const py::array& a, const py::array& logits, const char* fn, const char* name) {
    if (a.ndim() != 1 || a.shape(0) != logits.shape(0))
        fail(std::string(fn) + ": " + name + " must be (N,) for logits of shape " + shape_str(shape_of(logits)) +
             ", got " + shape_str(shape_of(a)));
}

// Every target is a class in [0, C) or ignore_index: the kernel indexes rows with them.
static void check_targets(const Int64Array& target, Index classes, std::int64_t ignore_index, const char* fn) {
    const std::int64_t* t = target.data();
    for (Index i = 0; i < target.shape(0); ++i)
        if (t[i] != ignore_index && (t[i] < 0 || t[i] >= classes))
            fail(std::string(fn) + ": target[" + std::to_string(i) + "] = " + std::to_string(t[i]) +
                 " is not a class in [0, " + std::to_string(classes) + ") nor ignore_index = " +
                 std::to_string(ignore_index));
}

static float check_smoothing(double label_smoothing, const char* fn) {
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
        fail(std::string(fn) + ": label_smoothing must be in [0, 1], got " + std::to_string(label_smoothing));
    return float(label_smoothing);
}

static py::tuple cross_entropy_fwd(py::handle logits_obj, py::handle target_obj, std::int64_t ignore_index,
                                   double label_smoothing) {
    const char* fn = "cross_entropy_forward";
    auto logits = f32(logits_obj, fn, "logits");
    auto target = typed<std::int64_t>(target_obj, fn, "target");
    check_logits(logits, fn);
    check_per_row(target, logits, fn, "target");
    const Index rows = logits.shape(0), classes = logits.shape(1);
    check_targets(target, classes, ignore_index, fn);
    const float eps = check_smoothing(label_smoothing, fn);
    FloatArray loss(Shape{rows});
    DoubleArray lse(Shape{rows});
    {
        py::gil_scoped_release release;
        cross_entropy_forward(logits.data(), target.data(), loss.mutable_data(), lse.mutable_data(), rows, classes,
                              ignore_index, eps);
    }
    return py::make_tuple(loss, lse);
}

// `out` (optional): where dlogits go, float32 C-contiguous writeable of logits' shape; it may be logits itself
// (each element is read before it is written), so a caller that no longer needs the logits saves a buffer.
static FloatArray cross_entropy_bwd(py::handle dloss_obj, py::handle logits_obj, py::handle lse_obj,
                                    py::handle target_obj, std::int64_t ignore_index, double label_smoothing,
                                    py::object out_obj) {
    const char* fn = "cross_entropy_backward";
    auto dloss = f32(dloss_obj, fn, "dloss"), logits = f32(logits_obj, fn, "logits");
    auto lse = typed<double>(lse_obj, fn, "lse");
    auto target = typed<std::int64_t>(target_obj, fn, "target");
    check_logits(logits, fn);
    check_per_row(dloss, logits, fn, "dloss");
    check_per_row(lse, logits, fn, "lse");
    check_per_row(target, logits, fn, "target");
    const Index rows = logits.shape(0), classes = logits.shape(1);
    check_targets(target, classes, ignore_index, fn);
    const float eps = check_smoothing(label_smoothing, fn);
    FloatArray dlogits = out_obj.is_none() ? new_output(shape_of(logits)) : writeable_f32(out_obj, fn, "out");
    if (!out_obj.is_none()) same_shape(dlogits, logits, fn, "out", "logits");
    py::gil_scoped_release release;
    cross_entropy_backward(dloss.data(), logits.data(), lse.data(), target.data(), dlogits.mutable_data(), rows,
                           classes, ignore_index, eps);
    return dlogits;
}

// ---------------------------------------------------------------- AdamW
// An array the step updates in place: float32, C-contiguous and writeable.
static FloatArray writeable_f32(py::handle obj, const char* fn, const char* name) {
    auto a = f32(obj, fn, name);
    if (!a.writeable()) fail(std::string(fn) + ": " + name + " is read-only, shape " + shape_str(shape_of(a)));
    return a;
}

static void adamw_step_py(py::handle param_obj, py::handle grad_obj, py::handle exp_avg_obj,
                          py::handle exp_avg_sq_obj, py::object max_exp_avg_sq_obj, double lr, double beta1,
                          double beta2, double eps, double weight_decay, long long step,
                          bool decoupled_weight_decay) {
    const char* fn = "adamw_step";
    auto param = writeable_f32(param_obj, fn, "param"), grad = f32(grad_obj, fn, "grad");
    auto m = writeable_f32(exp_avg_obj, fn, "exp_avg"), v = writeable_f32(exp_avg_sq_obj, fn, "exp_avg_sq");
    same_shape(param, grad, fn, "param", "grad");
    same_shape(param, m, fn, "param", "exp_avg");
    same_shape(param, v, fn, "param", "exp_avg_sq");
    const bool amsgrad = !max_exp_avg_sq_obj.is_none();
    FloatArray vmax = amsgrad ? writeable_f32(max_exp_avg_sq_obj, fn, "max_exp_avg_sq") : FloatArray(Shape{0});
    if (amsgrad) same_shape(param, vmax, fn, "param", "max_exp_avg_sq");
    if (step < 1) fail(std::string(fn) + ": step must be >= 1, got " + std::to_string(step));
    if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1))
        fail(std::string(fn) + ": betas must be in [0, 1), got (" + std::to_string(beta1) + ", " +
             std::to_string(beta2) + ")");
    // the reference's Python floats: computed in double, rounded once to float32
    AdamConstants k;
    k.decay = decoupled_weight_decay && weight_decay != 0 ? float(1 - lr * weight_decay) : 1.f;
    k.l2 = decoupled_weight_decay ? 0.f : float(weight_decay);
    k.one_minus_beta1 = float(1 - beta1);
    k.beta2 = float(beta2);
    k.one_minus_beta2 = float(1 - beta2);
    k.bias_correction2_sqrt = float(std::sqrt(1 - std::pow(beta2, double(step))));
    k.eps = float(eps);
    k.step_size = float(lr / (1 - std::pow(beta1, double(step))));
    float* vmax_data = amsgrad ? vmax.mutable_data() : nullptr;
    py::gil_scoped_release release;
    adamw_step(param.mutable_data(), grad.data(), m.mutable_data(), v.mutable_data(), vmax_data, param.size(), k);
}

// ---------------------------------------------------------------- runtime
static py::dict info() {
    py::dict d;
    d["isa"] = isa_name(current_isa());
    py::list available;
    for (int i = 0; i <= int(best_isa()); ++i) available.append(isa_name(Isa(i)));
    d["isa_available"] = available;
    d["threads"] = num_threads();
    d["compiler"] = std::string("gcc ") + __VERSION__;
    py::list versions;
    for (int i = 0; i < kMatmulVersions; ++i) versions.append(i);
    d["matmul_versions"] = versions;
    d["matmul_default_version"] = kDefaultMatmulVersion;
    return d;
}

static void set_isa_py(const std::string& name) {
    Isa isa;
    if (!parse_isa(name, &isa)) fail("set_isa: unknown ISA '" + name + "', choose scalar, avx2 or avx512");
    try {
        set_isa(isa);
    } catch (const std::invalid_argument& e) {
        fail(e.what());
    }
}

PYBIND11_MODULE(_C, m) {
    m.doc() = "minitx C++ kernels (validated entry points; see minitx/kernels.py for the documented API)";
    const int dv = kDefaultMatmulVersion;
    m.def("matmul", [](py::handle a, py::handle b, int version) { return matmul_impl(a, b, version, Trans::NN, "matmul"); },
          py::arg("a"), py::arg("b"), py::arg("version") = dv);
    m.def("matmul_tn", [](py::handle a, py::handle b, int version) { return matmul_impl(a, b, version, Trans::TN, "matmul_tn"); },
          py::arg("a"), py::arg("b"), py::arg("version") = dv);
    m.def("matmul_nt", [](py::handle a, py::handle b, int version) { return matmul_impl(a, b, version, Trans::NT, "matmul_nt"); },
          py::arg("a"), py::arg("b"), py::arg("version") = dv);
    m.def("softmax_forward", &softmax_fwd, py::arg("x"));
    m.def("softmax_backward", &softmax_bwd, py::arg("dy"), py::arg("y"));
    m.def("layer_norm_forward", &layer_norm_fwd, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps") = 1e-5);
    m.def("layer_norm_backward", &layer_norm_bwd, py::arg("dy"), py::arg("x"), py::arg("weight"), py::arg("mean"),
          py::arg("rstd"));
    m.def("gelu_forward", &gelu_fwd, py::arg("x"), py::arg("approximate") = "none");
    m.def("gelu_backward", &gelu_bwd, py::arg("dy"), py::arg("x"), py::arg("approximate") = "none");
    m.def("attention_forward", &attention_fwd, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask") = py::none(),
          py::arg("causal") = false, py::arg("scale") = py::none(), py::arg("dropout_p") = 0.0,
          py::arg("dropout_seed") = 0);
    m.def("attention_backward", &attention_bwd, py::arg("dout"), py::arg("q"), py::arg("k"), py::arg("v"),
          py::arg("out"), py::arg("lse"), py::arg("mask") = py::none(), py::arg("causal") = false,
          py::arg("scale") = py::none(), py::arg("dropout_p") = 0.0, py::arg("dropout_seed") = 0);
    m.def("cross_entropy_forward", &cross_entropy_fwd, py::arg("logits"), py::arg("target"),
          py::arg("ignore_index") = -100, py::arg("label_smoothing") = 0.0);
    m.def("cross_entropy_backward", &cross_entropy_bwd, py::arg("dloss"), py::arg("logits"), py::arg("lse"),
          py::arg("target"), py::arg("ignore_index") = -100, py::arg("label_smoothing") = 0.0,
          py::arg("out") = py::none());
    m.def("adamw_step", &adamw_step_py, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
          py::arg("max_exp_avg_sq"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
          py::arg("weight_decay"), py::arg("step"), py::arg("decoupled_weight_decay") = true);
    m.def("info", &info);
    m.def("set_isa", &set_isa_py, py::arg("name"));
    m.def("set_num_threads", [](int n) {
        if (n < 1) fail("set_num_threads: n must be >= 1, got " + std::to_string(n));
        set_num_threads(n);
    }, py::arg("n"));
    m.def("get_num_threads", &num_threads);
    m.def("output_cache_info", [] {
        const OutputCacheStats st = output_cache_stats();
        py::dict d;
        d["limit_bytes"] = st.limit;
        d["cached_bytes"] = st.cached_bytes;
        d["cached_blocks"] = st.cached_blocks;
        d["hits"] = st.hits;
        d["misses"] = st.misses;
        d["min_cached_output_bytes"] = kMinCachedBytes;
        return d;
    });
    m.def("set_output_cache_limit", [](long long nbytes) {
        if (nbytes < 0) fail("set_output_cache_limit: nbytes must be >= 0, got " + std::to_string(nbytes));
        output_cache_set_limit(std::size_t(nbytes));
    }, py::arg("nbytes"));
    m.def("empty_output_cache", &output_cache_clear);
}
