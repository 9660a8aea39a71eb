// ISA detection and the resident thread pool behind parallel_for (see common.h).
#include "common.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <thread>

#include <pthread.h>
#include <sched.h>

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

long long env_integer(const char* name, long long fallback, long long min_value) {
    const char* env = std::getenv(name);
    if (!env) return fallback;
    char* end = nullptr;
    const long long value = std::strtoll(env, &end, 10);
    return end != env && value >= min_value ? value : fallback;
}

static int g_threads = int(env_integer("MINITX_NUM_THREADS", 2, 1));

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

// The resident pool: num_threads() - 1 workers, created on first use, each bound to a core other than the
// caller's (see place()). After a parallel region a worker
// spins for kSpin (catching back-to-back calls: a core that went to sleep takes ~50-200 µs to wake on a
// virtual machine, as long as a whole 256³ product), then sleeps on a condition variable, so between
// bursts of calls nothing steals cycles from OpenBLAS's pool (whose workers spin ~100 ms). The caller
// likewise spins, then sleeps, while it waits for the workers. kSpin = 3 ms: with 0.3 ms, 30-77% of
// back-to-back 512³ products on the 2-core VM ran at under 100 GF/s (a worker that fell behind by more
// than the spin put the caller to sleep); with 3 ms, 3-7% did (median 134-139 GF/s; 1 and 10 ms no better).
// MINITX_SPIN_US overrides it. The price is CPU time, not wall time: a 60-step BERT pretraining run took
// 19.6 s wall, 22.1 s user and 7.9 s system with 3 ms (sched_yield calls) against 20.2 / 23.2 / 3.9 s
// with 0.3 ms. A resident worker also keeps its thread_local packing buffers (csrc/matmul/v3_packed.cpp)
// from call to call; a thread spawned per call allocated, zeroed and page-faulted ~2 MB of them every time.
// One region runs at a time: a call made while another is running (another Python thread, the GIL being
// released) or from inside a region runs on its calling thread alone.
namespace {

thread_local bool t_in_region = false;
const auto kSpin = std::chrono::microseconds(env_integer("MINITX_SPIN_US", 3000, 0));  // 0: sleep at once

// One step of a spin-wait: sched_yield rather than a pause instruction, so a spinning thread that
// shares a core with the thread it waits for (the scheduler places a woken worker next to its waker)
// gives the core up instead of holding it for its whole time slice.
inline void cpu_relax() { std::this_thread::yield(); }

// Spins until done() or kSpin has passed; true if done() became true.
template <class Done>
bool spin_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0;; ++i) {
        if (done()) return true;
        cpu_relax();
        if ((i & 15) == 15 && std::chrono::steady_clock::now() > deadline) return done();
    }
}

class Pool {
   public:
    void run(Index n_tasks, int workers, const std::function<void(Index)>& fn) {
        std::unique_lock<std::mutex> region(busy_, std::try_to_lock);
        if (!region.owns_lock()) return run_inline(n_tasks, fn);
        grow(workers - 1);
        place(workers - 1);
        {
            std::lock_guard<std::mutex> lk(m_);
            fn_ = &fn;
            n_tasks_ = n_tasks;
            next_ = 0;
            participants_ = workers;
            pending_ = workers - 1;
            generation_.fetch_add(1, std::memory_order_release);
        }
        work_.notify_all();
        t_in_region = true;
        std::exception_ptr error;
        try {
            take_tasks();
        } catch (...) {  // wait for the workers (they still use fn) before passing it on
            error = std::current_exception();
            next_ = n_tasks_;
        }
        t_in_region = false;
        auto finished = [&] { return pending_.load(std::memory_order_acquire) == 0; };
        if (!spin_until(finished)) {
            std::unique_lock<std::mutex> lk(m_);
            done_.wait(lk, finished);
        }
        if (error) std::rethrow_exception(error);
    }

    static void run_inline(Index n_tasks, const std::function<void(Index)>& fn) {
        for (Index i = 0; i < n_tasks; ++i) fn(i);
    }

   private:
    void grow(int n) {  // threads are detached and live until the process ends
        while (int(handles_.size()) < n) {
            const int w = int(handles_.size()) + 1;
            std::thread th([this, w] { worker_loop(w); });
            handles_.push_back(th.native_handle());
            worker_cpu_.push_back(-1);
            th.detach();
        }
    }

    // Worker w runs on the w-th allowed CPU after the caller's. Left free, the scheduler wakes a worker on
    // its waker's core, where it queues behind the caller for the whole region (measured on the 2-core
    // VM: the caller ran both halves of a product in most calls and never migrated). One
    // pthread_setaffinity_np call, only when the caller has moved.
    void place(int n) {
        if (allowed_.empty()) {
            cpu_set_t set;
            if (sched_getaffinity(0, sizeof(set), &set) == 0)
                for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
                    if (CPU_ISSET(cpu, &set)) allowed_.push_back(cpu);
            if (allowed_.empty()) allowed_.push_back(-1);
        }
        const int count = int(allowed_.size());
        if (count < 2) return;
        const int here = sched_getcpu();
        const int base = int(std::find(allowed_.begin(), allowed_.end(), here) - allowed_.begin()) % count;
        for (int w = 1; w <= n; ++w) {
            const int cpu = allowed_[(base + w) % count];
            if (worker_cpu_[w - 1] == cpu) continue;
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            pthread_setaffinity_np(handles_[w - 1], sizeof(one), &one);
            worker_cpu_[w - 1] = cpu;
        }
    }

    void take_tasks() {
        for (Index i = next_++; i < n_tasks_; i = next_++) (*fn_)(i);
    }

    void worker_loop(int w) {
        t_in_region = true;  // a worker never opens a region of its own
        std::uint64_t seen = 0;
        for (;;) {
            auto posted = [&] { return generation_.load(std::memory_order_acquire) != seen; };
            if (!spin_until(posted)) {
                std::unique_lock<std::mutex> lk(m_);
                work_.wait(lk, posted);
            }
            seen = generation_.load(std::memory_order_acquire);
            if (w >= participants_) continue;
            take_tasks();
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard<std::mutex> lk(m_);  // the caller may be between its check and its wait
                done_.notify_one();
            }
        }
    }

    std::mutex busy_, m_;
    std::condition_variable work_, done_;
    std::vector<pthread_t> handles_;
    std::vector<int> worker_cpu_, allowed_;  // the CPU each worker is bound to; the process's CPUs
    std::atomic<std::uint64_t> generation_{0};
    const std::function<void(Index)>* fn_ = nullptr;
    Index n_tasks_ = 0;
    std::atomic<Index> next_{0};
    int participants_ = 0;
    std::atomic<int> pending_{0};
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

namespace {
thread_local std::vector<float> t_retained;
thread_local bool t_retained_in_use = false;
}  // namespace

Scratch::Scratch(Index n_floats) : retained_(n_floats <= kRetainedScratchFloats) {
    if (!retained_) {
        own_.reset(new float[n_floats]);
        data_ = own_.get();
        return;
    }
    if (t_retained_in_use) throw std::logic_error("Scratch: one retained block per thread at a time");
    t_retained_in_use = true;
    if (Index(t_retained.size()) < n_floats) t_retained.resize(n_floats);
    data_ = t_retained.data();
}

Scratch::~Scratch() {
    if (retained_) t_retained_in_use = false;
}

void parallel_for(Index n_tasks, const std::function<void(Index)>& fn, int max_threads) {
    const int t = parallel_workers(n_tasks, max_threads);
    if (t <= 1 || t_in_region) return Pool::run_inline(n_tasks, fn);
    pool().run(n_tasks, t, fn);
}

int parallel_slots(Index n_tasks, int max_threads) { return parallel_workers(n_tasks, max_threads); }

void parallel_for_slots(Index n_tasks, const std::function<void(int, Index)>& fn, int max_threads) {
    const Index slots = parallel_slots(n_tasks, max_threads);
    parallel_for(slots, [&](Index slot) {
        for (Index task = slot; task < n_tasks; task += slots) fn(int(slot), task);
    }, max_threads);
}


// Waking a sleeping worker costs ~10-200 µs (csrc/runtime.cpp), but it spins ~3 ms after each call, so in
// a run of calls it is awake: a call goes parallel from kMinParallel elements (~30-60 µs of work on one
// core), in tasks of at least kMinElementsPerTask. Lowered from 2^19: at 512×768 the forward softmax went
// from 286 to ~150 µs, layer norm from 153 to ~80 µs (interleaved medians, 2-core VM).
static constexpr Index kMinParallel = 1 << 16;
static constexpr Index kMinElementsPerTask = 1 << 15;

static Index rows_per_task(Index n) { return std::max<Index>(1, kMinElementsPerTask / std::max<Index>(n, 1)); }

static int max_threads_for(Index rows, Index n) { return rows * n < kMinParallel ? 1 : 0; }

static Index row_tasks(Index rows, Index n) { return (rows + rows_per_task(n) - 1) / rows_per_task(n); }

void for_rows(Index rows, Index n, const std::function<void(Index, Index)>& body) {
    const Index per_task = rows_per_task(n);
    parallel_for(row_tasks(rows, n), [&](Index t) {
        body(t * per_task, std::min(rows, (t + 1) * per_task));
    }, max_threads_for(rows, n));
}

int for_row_slots(Index rows, Index n) { return parallel_slots(row_tasks(rows, n), max_threads_for(rows, n)); }

void for_rows_slots(Index rows, Index n, const std::function<void(int, Index, Index)>& body) {
    const Index per_task = rows_per_task(n);
    parallel_for_slots(row_tasks(rows, n), [&](int slot, Index t) {
        body(slot, t * per_task, std::min(rows, (t + 1) * per_task));
    }, max_threads_for(rows, n));
}

}  // namespace minitx
