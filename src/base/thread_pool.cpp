// The process's worker threads. run() publishes a job by bumping a generation counter;
// workers spin on it for a short while (a forward pass issues jobs back to back) and then
// sleep on it with std::atomic::wait.
#include <immintrin.h>

#include "critdim/base.hpp"

namespace critdim {

namespace {
constexpr int kSpinIterations = 1 << 14;  // about 0.3 ms of pause instructions

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
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
    for (auto& t : threads_) t.join();
}

int ThreadPool::default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

void ThreadPool::run_impl(JobFn fn, void* ctx) {
    if (n_threads_ == 1) {
        fn(ctx, 0, 1);
        return;
    }
    job_fn_ = fn;
    job_ctx_ = ctx;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    std::exception_ptr own_error;
    try {
        fn(ctx, 0, n_threads_);
    } catch (...) {
        own_error = std::current_exception();
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
    if (own_error) std::rethrow_exception(own_error);
    if (has_error_.load(std::memory_order_acquire)) {
        has_error_.store(false);
        std::exception_ptr e = job_error_;
        job_error_ = nullptr;
        std::rethrow_exception(e);
    }
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
        try {
            job_fn_(job_ctx_, ith, n_threads_);
        } catch (...) {
            bool expected = false;
            if (has_error_.compare_exchange_strong(expected, true)) job_error_ = std::current_exception();
        }
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    }
}

}  // namespace critdim
