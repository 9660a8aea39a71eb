// ISA detection and the resident thread pool behind parallel_for (see common.h).
#include "common.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <thread>

#include <pthread.h>

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

// The resident pool: num_threads() - 1 workers, created on first use, that sleep on a condition variable
// between parallel regions (no spinning, so nothing steals cycles from OpenBLAS's pool between calls).
// A resident worker keeps its thread_local packing buffers (csrc/matmul/v3_packed.cpp) from call to call;
// a thread spawned per call allocated, zeroed and page-faulted ~2 MB of them every time.
// One region runs at a time: a call made while another is running (another Python thread, the GIL being
// released) or from inside a region runs on its calling thread alone.
namespace {

thread_local bool t_in_region = false;

class Pool {
   public:
    void run(Index n_tasks, int workers, const std::function<void(Index, int)>& fn) {
        std::unique_lock<std::mutex> region(busy_, std::try_to_lock);
        if (!region.owns_lock()) return run_inline(n_tasks, fn);
        grow(workers - 1);
        {
            std::lock_guard<std::mutex> lk(m_);
            fn_ = &fn;
            n_tasks_ = n_tasks;
            next_ = 0;
            participants_ = workers;
            pending_ = workers - 1;
            ++generation_;
        }
        work_.notify_all();
        t_in_region = true;
        std::exception_ptr error;
        try {
            take_tasks(0);
        } catch (...) {  // wait for the workers (they still use fn) before passing it on
            error = std::current_exception();
            next_ = n_tasks_;
        }
        t_in_region = false;
        std::unique_lock<std::mutex> lk(m_);
        done_.wait(lk, [&] { return pending_ == 0; });
        if (error) std::rethrow_exception(error);
    }

    static void run_inline(Index n_tasks, const std::function<void(Index, int)>& fn) {
        for (Index i = 0; i < n_tasks; ++i) fn(i, 0);
    }

   private:
    void grow(int n) {  // threads are detached and live until the process ends
        while (int(threads_started_) < n) {
            const int w = int(++threads_started_);
            std::thread([this, w] { worker_loop(w); }).detach();
        }
    }

    void take_tasks(int w) {
        for (Index i = next_++; i < n_tasks_; i = next_++) (*fn_)(i, w);
    }

    void worker_loop(int w) {
        t_in_region = true;  // a worker never opens a region of its own
        std::uint64_t seen = 0;
        std::unique_lock<std::mutex> lk(m_);
        for (;;) {
            work_.wait(lk, [&] { return generation_ != seen; });
            seen = generation_;
            if (w >= participants_) continue;
            lk.unlock();
            take_tasks(w);
            lk.lock();
            if (--pending_ == 0) done_.notify_one();
        }
    }

    std::mutex busy_, m_;
    std::condition_variable work_, done_;
    std::atomic<int> threads_started_{0};
    std::uint64_t generation_ = 0;
    const std::function<void(Index, int)>* fn_ = nullptr;
    Index n_tasks_ = 0;
    std::atomic<Index> next_{0};
    int participants_ = 0, pending_ = 0;
};

Pool* g_pool = nullptr;  // leaked on purpose: no joins at exit; a forked child starts a fresh one

Pool& pool() {
    static const bool registered = [] {
        pthread_atfork(nullptr, nullptr, [] { g_pool = nullptr; });  // the child has none of the workers
        return true;
    }();
    (void)registered;
    static std::mutex create;
    std::lock_guard<std::mutex> lk(create);
    if (!g_pool) g_pool = new Pool();
    return *g_pool;
}

}  // namespace

void parallel_for_worker(Index n_tasks, const std::function<void(Index, int)>& fn, int max_threads) {
    const int t = parallel_workers(n_tasks, max_threads);
    if (t <= 1 || t_in_region) return Pool::run_inline(n_tasks, fn);
    pool().run(n_tasks, t, fn);
}

void parallel_for(Index n_tasks, const std::function<void(Index)>& fn, int max_threads) {
    parallel_for_worker(n_tasks, [&](Index i, int) { fn(i); }, max_threads);
}

}  // namespace minitx
