// Shared pieces of the minitx kernels: index type, run-time ISA choice, the thread pool.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace minitx {

using Index = std::int64_t;

// Instruction sets the kernels can use, chosen once at import from cpuid (`__builtin_cpu_supports`)
// and lowered with MINITX_ISA=scalar|avx2|avx512 or set_isa() (tests run every path the CPU has).
enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };
Isa current_isa();
Isa best_isa();                       // the best the CPU supports
void set_isa(Isa isa);                // throws std::invalid_argument if the CPU lacks it
const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);

// The integer in environment variable `name` if it is set, parses and is >= min_value; else `fallback`.
long long env_integer(const char* name, long long fallback, long long min_value);

// Threads: default 2 (this project's CI machines have 2 cores), or MINITX_NUM_THREADS.
int num_threads();
void set_num_threads(int n);

// Run fn(task) for task in [0, n_tasks) on up to num_threads() threads: the caller plus the workers of
// a resident pool (created on first use; a worker spins ~3 ms after a call to catch the next one, then
// sleeps on a condition variable, so between bursts of calls it steals no cycles from OpenBLAS's pool),
// taking tasks from a shared counter. Waking a sleeping worker costs ~50-200 µs on a VM, so callers
// only go parallel when the work is large. A call made inside a parallel region, or while another
// thread's region runs, runs on its calling thread alone.
void parallel_for(Index n_tasks, const std::function<void(Index)>& fn, int max_threads = 0);
// For sums across tasks (partial sums added afterwards instead of atomics), with the same bits on every run:
// the tasks [0, n_tasks) are dealt to parallel_slots(...) slots like cards (slot s takes tasks s, s + S, s + 2S, ...,
// so neighbouring tasks of unequal cost, such as a causal mask's key blocks, are spread over the slots), and
// fn(slot, task) runs for each task of a slot in that order, the slots in parallel. A slot's partial sum covers
// the same tasks whichever thread runs it; adding the slots' sums in slot order is then deterministic (per-thread
// sums are not: which thread takes which task depends on timing, and float addition is not associative).
int parallel_slots(Index n_tasks, int max_threads = 0);
void parallel_for_slots(Index n_tasks, const std::function<void(int, Index)>& fn, int max_threads = 0);

// parallel_for over the rows of a (rows × n) array, for row-wise kernels (csrc/fused/): rows are split over
// threads only when there is enough work (rows·n elements); body(r0, r1) gets a range of rows. The _slots form
// deals the ranges to for_row_slots(rows, n) slots (parallel_for_slots), body(slot, r0, r1), for sums over rows
// with the same bits on every run (layer norm's dw, db).
void for_rows(Index rows, Index n, const std::function<void(Index, Index)>& body);
int for_row_slots(Index rows, Index n);
void for_rows_slots(Index rows, Index n, const std::function<void(int, Index, Index)>& body);

// Temporary floats for one kernel call (uninitialised). A request up to kRetainedScratchFloats reuses a
// block the calling thread keeps from call to call (grown, never shrunk), so repeated calls do not
// page-fault fresh memory every time: fresh buffers cost ~10% of a (1,8,512,64) attention backward in
// kernel page-fault time. Larger requests get their own allocation (their page faults are a small share
// of the work they go with). One Scratch per thread at a time (nesting throws std::logic_error).
inline constexpr Index kRetainedScratchFloats = Index(4) << 20;  // 16 MiB
class Scratch {
   public:
    explicit Scratch(Index n_floats);
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    float* data() const { return data_; }

   private:
    std::unique_ptr<float[]> own_;
    float* data_;
    bool retained_;
};

}  // namespace minitx
