// The process's worker threads. A job is published by bumping a generation counter; workers
// spin on it for a short while (a forward pass issues jobs back to back) and then sleep on it
// with std::atomic::wait.
//
// Chunked jobs (parallel_for) never wait for a worker that has not started: the threads take
// chunks from a shared counter, a worker joins the job only while it is open, and the caller,
// once every chunk is taken, closes the job and waits only for the workers inside it. On a
// machine busier than the pool (other processes on the cores), a descheduled worker then costs
// its chunk, not the whole job.
#include <immintrin.h>

#include "critdim/base.hpp"

namespace critdim {

namespace {
constexpr int kSpinIterations = 1 << 14;  // about 0.3 ms of pause instructions
constexpr uint64_t kClosed = uint64_t{1} << 31;
constexpr uint64_t kInsideMask = kClosed - 1;
constexpr int64_t kChunksPerThread = 8;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(2, std::memory_order_acq_rel);
    generation_.notify_all();
    for (auto& t : threads_) t.join();
}

int ThreadPool::default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

void ThreadPool::publish(JobFn fn, void* ctx, bool chunked) {
    job_fn_.store(fn, std::memory_order_relaxed);
    job_ctx_.store(ctx, std::memory_order_relaxed);
    const uint32_t g = generation_.load(std::memory_order_relaxed);
    generation_.store(((g >> 1) + 1) << 1 | (chunked ? 1u : 0u), std::memory_order_release);
    generation_.notify_all();
}

void ThreadPool::record_error() {
    bool expected = false;
    if (has_error_.compare_exchange_strong(expected, true)) job_error_ = std::current_exception();
}

void ThreadPool::rethrow_job_error() {
    if (!has_error_.load(std::memory_order_acquire)) return;
    std::exception_ptr e = job_error_;
    job_error_ = nullptr;
    has_error_.store(false);
    std::rethrow_exception(e);
}

void ThreadPool::run_impl(JobFn fn, void* ctx) {
    if (n_threads_ == 1) {
        fn(ctx, 0, 1, 0);
        return;
    }
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    publish(fn, ctx, false);
    try {
        fn(ctx, 0, n_threads_, 0);
    } catch (...) {
        record_error();
    }
    int left = pending_.load(std::memory_order_acquire);
    for (int spin = 0; left != 0 && spin < kSpinIterations; ++spin) {
        cpu_relax();
        left = pending_.load(std::memory_order_acquire);
    }
    while (left != 0) {
        pending_.wait(left, std::memory_order_acquire);
        left = pending_.load(std::memory_order_acquire);
    }
    rethrow_job_error();
}

void ThreadPool::run_chunks(int ith) {
    const JobFn fn = job_fn_.load(std::memory_order_relaxed);
    void* const ctx = job_ctx_.load(std::memory_order_relaxed);
    while (!has_error_.load(std::memory_order_relaxed)) {
        const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
        if (c >= n_chunks_) return;
        const int64_t begin = c * grain_;
        try {
            fn(ctx, begin, std::min(n_items_, begin + grain_), ith);
        } catch (...) {
            record_error();
        }
    }
}

void ThreadPool::chunked_impl(JobFn fn, void* ctx, int64_t n) {
    const int64_t target = std::min<int64_t>(n, kChunksPerThread * n_threads_);
    grain_ = (n + target - 1) / target;
    n_chunks_ = (n + grain_ - 1) / grain_;
    n_items_ = n;
    next_chunk_.store(0, std::memory_order_relaxed);
    job_fn_.store(fn, std::memory_order_relaxed);
    job_ctx_.store(ctx, std::memory_order_relaxed);
    // Open the job (release: everything above is visible to a worker that joins it).
    const uint64_t job = (entry_.load(std::memory_order_relaxed) >> 32) + 1;
    entry_.store(job << 32, std::memory_order_release);
    publish(fn, ctx, true);
    run_chunks(0);
    // Every chunk is taken: close the job and wait for the workers still inside it.
    uint64_t s = entry_.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
    for (int spin = 0; (s & kInsideMask) != 0; ++spin) {
        if (spin < kSpinIterations)
            cpu_relax();
        else
            std::this_thread::yield();  // a worker inside was descheduled mid-chunk
        s = entry_.load(std::memory_order_acquire);
    }
    rethrow_job_error();
}

void ThreadPool::worker(int ith) {
    uint32_t seen = 0;
    for (;;) {
        uint32_t gen = generation_.load(std::memory_order_acquire);
        for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
            cpu_relax();
            gen = generation_.load(std::memory_order_acquire);
        }
        while (gen == seen) {
            generation_.wait(seen, std::memory_order_acquire);
            gen = generation_.load(std::memory_order_acquire);
        }
        seen = gen;
        if (stop_.load(std::memory_order_acquire)) return;
        if (gen & 1u) {
            // Join the open chunked job, if there still is one (it may be a later job than the
            // one that woke us: then we help with that one).
            uint64_t s = entry_.load(std::memory_order_acquire);
            while (!(s & kClosed))
                if (entry_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
                    run_chunks(ith);
                    entry_.fetch_sub(1, std::memory_order_release);
                    break;
                }
            continue;
        }
        try {
            job_fn_.load(std::memory_order_relaxed)(job_ctx_.load(std::memory_order_relaxed), ith, n_threads_, ith);
        } catch (...) {
            record_error();
        }
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    }
}

}  // namespace critdim
