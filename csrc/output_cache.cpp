// See output_cache.h.
#include "output_cache.h"

#include "common.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <list>
#include <mutex>
#include <new>

namespace minitx {

namespace {

constexpr std::size_t kHugePage = std::size_t(2) << 20;

std::size_t round_size(std::size_t bytes) {  // 64 KiB granules: shapes a few rows apart share blocks
    constexpr std::size_t granule = std::size_t(64) << 10;
    return (bytes + granule - 1) / granule * granule;
}

void* fresh_block(std::size_t rounded) {
    const bool huge = rounded >= 2 * kHugePage;
    const std::size_t align = huge ? kHugePage : 64;
    const std::size_t size = (rounded + align - 1) / align * align;
    void* p = std::aligned_alloc(align, size);
    if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (huge) madvise(p, size, MADV_HUGEPAGE);  // as NumPy does for its own large arrays
#endif
    return p;
}

std::size_t initial_limit() { return std::size_t(env_integer("MINITX_OUTPUT_CACHE_MB", 256, 0)) << 20; }

struct Block {
    void* p;
    std::size_t bytes;
};

class OutputCache {
   public:
    void* take(std::size_t bytes, std::size_t* rounded) {
        *rounded = round_size(bytes);
        {
            std::lock_guard<std::mutex> lk(m_);
            for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it)  // newest first: likeliest in cache
                if (it->bytes == *rounded) {
                    void* p = it->p;
                    cached_ -= it->bytes;
                    blocks_.erase(std::next(it).base());
                    ++hits_;
                    return p;
                }
            ++misses_;
        }
        return fresh_block(*rounded);
    }

    void give(void* p, std::size_t bytes) {
        std::lock_guard<std::mutex> lk(m_);
        if (bytes > limit_) return std::free(p);
        evict_to(limit_ - bytes);
        blocks_.push_back({p, bytes});
        cached_ += bytes;
    }

    void set_limit(std::size_t bytes) {
        std::lock_guard<std::mutex> lk(m_);
        limit_ = bytes;
        evict_to(limit_);
    }

    void clear() {
        std::lock_guard<std::mutex> lk(m_);
        evict_to(0);
    }

    bool enabled() {
        std::lock_guard<std::mutex> lk(m_);
        return limit_ > 0;
    }

    OutputCacheStats stats() {
        std::lock_guard<std::mutex> lk(m_);
        return {limit_, cached_, blocks_.size(), hits_, misses_};
    }

   private:
    void evict_to(std::size_t budget) {  // oldest first
        while (cached_ > budget) {
            cached_ -= blocks_.front().bytes;
            std::free(blocks_.front().p);
            blocks_.pop_front();
        }
    }

    std::mutex m_;
    std::list<Block> blocks_;  // oldest at the front
    std::size_t limit_ = initial_limit(), cached_ = 0, hits_ = 0, misses_ = 0;
};

// Leaked on purpose: arrays may be freed during interpreter shutdown, after static destructors would run.
OutputCache& cache() {
    static OutputCache* c = new OutputCache();
    return *c;
}

}  // namespace

void* output_cache_take(std::size_t bytes, std::size_t* rounded) { return cache().take(bytes, rounded); }
void output_cache_give(void* block, std::size_t rounded) { cache().give(block, rounded); }
void output_cache_set_limit(std::size_t bytes) { cache().set_limit(bytes); }
void output_cache_clear() { cache().clear(); }
bool output_cache_enabled() { return cache().enabled(); }
OutputCacheStats output_cache_stats() { return cache().stats(); }

}  // namespace minitx
