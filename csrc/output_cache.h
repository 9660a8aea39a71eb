// A cache of freed kernel outputs, so that a large output is not page-faulted afresh on every call.
//
// Why: glibc hands out allocations above 32 MiB (and often far smaller ones) as fresh mmap'd pages, which
// the kernel must zero-fill on first touch. For a 128 MiB output (8192 × 4096 floats) that zero-filling
// took ~10-14 ms on the 2-core VM — as long as the softmax itself. A training loop allocates outputs of
// the same sizes every step, so the blocks the Python side frees are kept here and handed to the next
// output of the same (rounded) size: the idea of PyTorch's caching allocators, or of linking jemalloc.
//
// Outputs smaller than kMinCachedBytes, and all outputs while the cache is off, take NumPy's allocator as
// before. Cached blocks are at most limit() bytes in all (MINITX_OUTPUT_CACHE_MB, default 256; 0 turns the
// cache off); when a freed block
// does not fit, the oldest are released first. All calls happen under the GIL (allocation in the binding,
// release from the array's base capsule); a mutex guards the lists anyway.
// Reference: none in NumPy (memory management only; results are identical with the cache off).
#pragma once
#include <cstddef>

namespace minitx {

struct OutputCacheStats {
    std::size_t limit, cached_bytes, cached_blocks, hits, misses;
};

inline constexpr std::size_t kMinCachedBytes = std::size_t(1) << 20;  // 1 MiB

// A block of at least `bytes` (64-byte aligned; 2 MiB-aligned and advised for transparent huge pages
// from 4 MiB): a cached one of the same rounded size if there is one, else a fresh one. Throws
// std::bad_alloc when memory runs out.
void* output_cache_take(std::size_t bytes, std::size_t* rounded);
// Gives a block from output_cache_take back (kept, or released if it does not fit under the limit).
void output_cache_give(void* block, std::size_t rounded);
void output_cache_set_limit(std::size_t bytes);  // releases blocks beyond the new limit (0: all)
bool output_cache_enabled();                     // limit() > 0
void output_cache_clear();                       // releases every cached block; keeps the limit
OutputCacheStats output_cache_stats();

}  // namespace minitx
