// ISA detection and the spawn-per-call thread helper (see common.h).
#include "common.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace minitx {

static Isa detect_isa() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
    return Isa::Scalar;
}

static Isa initial_isa() {
    Isa isa = detect_isa();
    if (const char* env = std::getenv("MINITX_ISA")) {
        Isa wanted;
        if (parse_isa(env, &wanted) && static_cast<int>(wanted) <= static_cast<int>(isa)) isa = wanted;
    }
    return isa;
}

static Isa g_isa = initial_isa();

static int initial_threads() {
    if (const char* env = std::getenv("MINITX_NUM_THREADS")) {
        int n = std::atoi(env);
        if (n >= 1) return n;
    }
    return 2;
}

static int g_threads = initial_threads();

Isa best_isa() { return detect_isa(); }
Isa current_isa() { return g_isa; }

void set_isa(Isa isa) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa()))
        throw std::invalid_argument(std::string("set_isa: this CPU does not support ") + isa_name(isa));
    g_isa = isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Avx512: return "avx512";
        case Isa::Avx2: return "avx2";
        default: return "scalar";
    }
}

bool parse_isa(const std::string& name, Isa* out) {
    if (name == "scalar") *out = Isa::Scalar;
    else if (name == "avx2") *out = Isa::Avx2;
    else if (name == "avx512") *out = Isa::Avx512;
    else return false;
    return true;
}

int num_threads() { return g_threads; }

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1");
    g_threads = n;
}

int parallel_workers(Index n_tasks, int max_threads) {
    const int t = max_threads > 0 ? std::min(max_threads, g_threads) : g_threads;
    return static_cast<int>(std::max<Index>(1, std::min<Index>(t, n_tasks)));
}

void parallel_for_worker(Index n_tasks, const std::function<void(Index, int)>& fn, int max_threads) {
    const int t = parallel_workers(n_tasks, max_threads);
    if (t <= 1) {
        for (Index i = 0; i < n_tasks; ++i) fn(i, 0);
        return;
    }
    std::atomic<Index> next{0};
    auto worker = [&](int w) {
        for (Index i = next++; i < n_tasks; i = next++) fn(i, w);
    };
    std::vector<std::thread> pool;
    for (int w = 1; w < t; ++w) pool.emplace_back(worker, w);
    worker(0);
    for (auto& th : pool) th.join();
}

void parallel_for(Index n_tasks, const std::function<void(Index)>& fn, int max_threads) {
    parallel_for_worker(n_tasks, [&](Index i, int) { fn(i); }, max_threads);
}

}  // namespace minitx
