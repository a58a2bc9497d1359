// critdim base: errors and exit codes, checked file access, atomic writes, .npy I/O,
// the thread pool, and the catalogue of ggml tensor types that GGUF files name.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

namespace critdim {

// ---------------------------------------------------------------------------------------------
// Errors. Every failure a user can cause is an Error with a category; the command maps the
// category to a documented exit code (docs/errors.md). Messages read "WHERE: WHAT".

enum class ErrorKind {
    usage,     // bad command line                           exit 2
    input,     // a file or its content is malformed          exit 3
    mismatch,  // a plan, vector or file does not fit the model exit 4
    io,        // the operating system refused a read/write  exit 5
    internal,  // a bug in critdim                            exit 70
};

int exit_code(ErrorKind kind);
const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, std::string_view where, std::string_view what);
    ErrorKind kind() const { return kind_; }

private:
    ErrorKind kind_;
};

[[noreturn]] void throw_input(std::string_view where, std::string_view what);
[[noreturn]] void throw_io(std::string_view where, std::string_view what);
[[noreturn]] void throw_usage(std::string_view what);

// ---------------------------------------------------------------------------------------------
// Files.

// A read-only memory map of a whole file; an empty file maps to an empty span.
class MappedFile {
public:
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::string& path() const { return path_; }
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    std::span<const uint8_t> bytes() const { return {data_, size_}; }

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

std::string read_text_file(const std::string& path);

// Writes to a temporary file in the destination's folder; commit() fsyncs and renames it
// over the destination, so a reader sees the old file or the new one, never a torn one.
// Destroyed without commit(), it removes the temporary file.
class AtomicFile {
public:
    explicit AtomicFile(std::string path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t n);
    void write(std::string_view s) { write(s.data(), s.size()); }
    void commit();
    uint64_t bytes_written() const { return written_; }

private:
    void flush_buffer();
    std::string path_, tmp_path_;
    int fd_ = -1;
    uint64_t written_ = 0;
    std::vector<char> buffer_;
};

void write_file_atomic(const std::string& path, std::string_view content);

// ---------------------------------------------------------------------------------------------
// NumPy .npy (format 1.0, little-endian float32, C order).

struct NpyArray {
    std::vector<int64_t> shape;
    std::vector<float> data;
    int64_t size() const;
};

void write_npy(const std::string& path, const float* data, std::span<const int64_t> shape);
NpyArray read_npy(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Threads. One pool per process; run() executes fn(ith, nth) on every thread (the caller is
// thread 0) and returns when all are done. Waiting threads spin briefly (the forward pass
// calls run() hundreds of times per token) and then sleep on a futex; they never yield, which
// on a loaded machine would hand the core to another process for a whole time slice.

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Runs fn(ith, nth) once on every thread (ith = 0 is the caller) and returns when all are
    // done. For work that needs every thread (a barrier inside); parallel_for is the usual call.
    template <class F>
    void run(F&& fn) {
        using Fn = std::remove_reference_t<F>;
        auto trampoline = [](void* ctx, int64_t ith, int64_t nth, int) {
            (*static_cast<Fn*>(ctx))(int(ith), int(nth));
        };
        run_impl(trampoline, const_cast<void*>(static_cast<const void*>(&fn)));
    }

    // Runs fn(begin, end, ith) over [0, n) in chunks that the threads take as they come free
    // (ith: the thread running the chunk, for per-thread scratch). The caller works too and
    // returns when every chunk is done; it does not wait for a worker that has not woken up
    // (on a loaded machine the caller then does that worker's share). Work too small to be
    // worth waking the other threads (n * cost_per_item below ~64K operations) runs on the
    // caller alone.
    template <class F>
    void parallel_for_thread(int64_t n, F&& fn, int64_t cost_per_item = 1 << 16) {
        if (n <= 0) return;
        if (n_threads_ == 1 || n * cost_per_item < (int64_t{1} << 16)) {
            fn(int64_t{0}, n, 0);
            return;
        }
        using Fn = std::remove_reference_t<F>;
        auto trampoline = [](void* ctx, int64_t b, int64_t e, int ith) { (*static_cast<Fn*>(ctx))(b, e, ith); };
        chunked_impl(trampoline, const_cast<void*>(static_cast<const void*>(&fn)), n);
    }
    template <class F>
    void parallel_for(int64_t n, F&& fn, int64_t cost_per_item = 1 << 16) {
        parallel_for_thread(
            n, [&fn](int64_t b, int64_t e, int) { fn(b, e); }, cost_per_item);
    }

    static int default_threads();

private:
    // (ctx, a, b, ith): run() passes (ith, nth), chunked jobs (begin, end).
    using JobFn = void (*)(void*, int64_t, int64_t, int);
    void run_impl(JobFn fn, void* ctx);
    void chunked_impl(JobFn fn, void* ctx, int64_t n);
    void publish(JobFn fn, void* ctx, bool chunked);
    void run_chunks(int ith);
    void record_error();
    void rethrow_job_error();
    void worker(int ith);

    int n_threads_;
    std::vector<std::thread> threads_;
    // Bit 0: the job is chunked; the rest counts jobs. 32-bit: waits are plain futexes.
    std::atomic<uint32_t> generation_{0};
    std::atomic<int> pending_{0};  // run(): workers still running
    // Chunked jobs: job number << 32 | closed bit | workers inside. A worker joins with a
    // compare-and-swap while the job is open; the caller closes it and waits for those inside.
    std::atomic<uint64_t> entry_{0};
    std::atomic<int64_t> next_chunk_{0};
    std::atomic<int64_t> chunks_done_{0};
    int64_t n_items_ = 0, grain_ = 1, n_chunks_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<JobFn> job_fn_{nullptr};
    std::atomic<void*> job_ctx_{nullptr};
    std::exception_ptr job_error_;
    std::atomic<bool> has_error_{false};
};

// ---------------------------------------------------------------------------------------------
// Progress of long work on stderr: done/total, rate and ETA, redrawn at most every 0.2 s.
// Shown on a terminal (or when forced); silent otherwise, so logs and pipes stay clean.

class Progress {
public:
    Progress(std::string label, int64_t total, std::string unit = "tokens", bool force = false);
    ~Progress();
    void update(int64_t done);
    void finish();
    double elapsed_seconds() const;

private:
    void draw(bool final);
    std::string label_, unit_;
    int64_t total_, done_ = 0;
    bool enabled_, finished_ = false;
    double start_, last_draw_ = -1.0;
};

// ---------------------------------------------------------------------------------------------
// ggml tensor types as GGUF files name them (ids are ggml's). The catalogue knows every type a
// GGUF file may hold, so that sizes can be checked; `supported` marks the ones critdim computes.

enum class TensorType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q8_0 = 8,
    Q4_K = 12,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,
};

struct TensorTypeInfo {
    uint32_t id;
    const char* name;
    int64_t block_size;   // elements per block
    int64_t block_bytes;  // bytes per block
    bool supported;       // critdim can compute with it as a weight type
};

// nullptr when the id is not a ggml type.
const TensorTypeInfo* tensor_type_info(uint32_t id);
const TensorTypeInfo& tensor_type_info(TensorType type);
const char* tensor_type_name(TensorType type);
// Case-insensitive lookup by name ("q8_0", "F32"); nullptr when unknown.
const TensorTypeInfo* tensor_type_by_name(std::string_view name);
// "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K"
std::string supported_tensor_type_names();
// Bytes of a row of n elements; n must be a multiple of the block size.
size_t tensor_row_bytes(TensorType type, int64_t n);

}  // namespace critdim
