// Google Benchmark of the kernels: gemm per weight type, backend and shape, single-threaded,
// with rate counters GFLOP (2 * rows * n * n_tok per call, shown per second) and GB (weight
// bytes read per call, shown per second);
// and the activation conversion. Shapes are smollm2-135m's: 576 x 576 (attention), 1536 x 576
// (feed-forward up; the k-quants, whose rows must be multiples of 256, use 576 x 1536 instead).
//
//   critdim_bench_kernels --benchmark_filter='gemm/Q8_0'
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "critdim/kernels.hpp"

namespace {

using critdim::TensorType;
namespace kernels = critdim::kernels;

struct Shape {
    int64_t rows, n;
};

bool try_backend(kernels::Backend b) {
    try {
        kernels::set_backend(b);
        return true;
    } catch (const critdim::Error&) {
        return false;
    }
}

void bench_gemm(benchmark::State& state, kernels::Backend backend, TensorType type, Shape shape, int64_t n_tok) {
    if (!try_backend(backend)) {
        state.SkipWithError("backend not supported by this CPU");
        return;
    }
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t wrb = kernels::row_bytes(type, shape.n);
    const size_t xrb = kernels::row_bytes(kernels::vec_dot_type(type), shape.n);
    std::vector<uint8_t> w(wrb * shape.rows), x(xrb * n_tok);
    std::vector<float> row(shape.n), y(shape.rows * n_tok);
    for (int64_t r = 0; r < shape.rows; ++r) {
        for (auto& v : row) v = normal(rng);
        kernels::quantize_row(type, row.data(), w.data() + r * wrb, shape.n);
    }
    for (int64_t t = 0; t < n_tok; ++t) {
        for (auto& v : row) v = normal(rng);
        kernels::quantize_activations(type, row.data(), x.data() + t * xrb, shape.n);
    }
    for (auto _ : state) {
        kernels::gemm(type, shape.n, w.data(), wrb, 0, shape.rows, x.data(), xrb, n_tok, y.data(), shape.rows);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    const double flops = 2.0 * static_cast<double>(shape.rows) * shape.n * n_tok;
    state.counters["GFLOP"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["GB"] =
        benchmark::Counter(static_cast<double>(w.size()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    kernels::set_backend(kernels::detected_backend());
}

void bench_activations(benchmark::State& state, TensorType weight, int64_t n, int64_t n_tok) {
    std::mt19937 rng(2);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> src(n * n_tok);
    for (auto& v : src) v = normal(rng);
    const size_t xrb = kernels::row_bytes(kernels::vec_dot_type(weight), n);
    std::vector<uint8_t> dst(xrb * n_tok);
    for (auto _ : state) {
        for (int64_t t = 0; t < n_tok; ++t)
            kernels::quantize_activations(weight, src.data() + t * n, dst.data() + t * xrb, n);
        benchmark::DoNotOptimize(dst.data());
    }
    state.counters["GB"] =
        benchmark::Counter(static_cast<double>(src.size()) * 4e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The memory bandwidth a plain read reaches: state.range(0) threads each sum their slice of a
// 512 MiB buffer (far beyond the caches), started and joined inside every iteration (a few
// microseconds against tens of milliseconds). Generation's ceiling is this figure divided by
// the model's bytes; bench/model_table.py reports tokens/s as a share of it, from the same run.
void bench_memory_read(benchmark::State& state) {
    static const std::vector<uint64_t> buffer = [] {
        std::vector<uint64_t> b((size_t{512} << 20) / 8);
        for (size_t i = 0; i < b.size(); ++i) b[i] = i;
        return b;
    }();
    const auto n_threads = static_cast<size_t>(state.range(0));
    const size_t slice = buffer.size() / n_threads;
    std::vector<uint64_t> sums(n_threads);
    auto sum_slice = [&](size_t t) {
        const uint64_t* p = buffer.data() + slice * t;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i + 4 <= slice; i += 4) s0 += p[i], s1 += p[i + 1], s2 += p[i + 2], s3 += p[i + 3];
        sums[t] = s0 + s1 + s2 + s3;
    };
    for (auto _ : state) {
        std::vector<std::thread> threads;
        for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(sum_slice, t);
        sum_slice(0);
        for (auto& th : threads) th.join();
        benchmark::DoNotOptimize(sums.data());
    }
    state.counters["GB"] = benchmark::Counter(static_cast<double>(slice * n_threads) * 8e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

const char* backend_name(kernels::Backend b) {
    switch (b) {
        case kernels::Backend::scalar:
            return "scalar";
        case kernels::Backend::avx2:
            return "avx2";
        case kernels::Backend::avx512:
            return "avx512";
    }
    return "?";
}

void register_all() {
    const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K};
    for (kernels::Backend backend : {kernels::Backend::avx512, kernels::Backend::avx2, kernels::Backend::scalar})
        for (TensorType type : types) {
            const bool k_quant = type == TensorType::Q4_K || type == TensorType::Q6_K;
            const Shape shapes[] = {k_quant ? Shape{576, 768} : Shape{576, 576},
                                    k_quant ? Shape{576, 1536} : Shape{1536, 576}};
            for (Shape shape : shapes)
                for (int64_t n_tok : {1, 512}) {
                    if (backend == kernels::Backend::scalar && n_tok > 1) continue;  // minutes, and says nothing new
                    const std::string name = std::string("gemm/") + critdim::tensor_type_name(type) + "/" +
                                             backend_name(backend) + "/" + std::to_string(shape.rows) + "x" +
                                             std::to_string(shape.n) + "/tok:" + std::to_string(n_tok);
                    benchmark::RegisterBenchmark(name.c_str(), bench_gemm, backend, type, shape, n_tok)
                        ->Unit(benchmark::kMicrosecond);
                }
        }
    // Generation reads each weight once per token from memory, not from the caches: the same
    // kernels on a 128 MiB matrix (several times the L3) show the bandwidth they reach.
    for (kernels::Backend backend : {kernels::Backend::avx512, kernels::Backend::avx2})
        for (TensorType type : types) {
            const int64_t n = (type == TensorType::Q4_K || type == TensorType::Q6_K) ? 1536 : 576;
            const Shape shape{(int64_t{128} << 20) / static_cast<int64_t>(kernels::row_bytes(type, n)), n};
            const std::string name = std::string("gemm_dram/") + critdim::tensor_type_name(type) + "/" +
                                     backend_name(backend) + "/128MiB/tok:1";
            benchmark::RegisterBenchmark(name.c_str(), bench_gemm, backend, type, shape, int64_t{1})
                ->Unit(benchmark::kMillisecond);
        }
    benchmark::RegisterBenchmark("memory_read/512MiB/threads", bench_memory_read)
        ->Unit(benchmark::kMillisecond)
        ->Arg(1)
        ->Arg(2)
        ->UseRealTime();
    for (TensorType weight : {TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_K}) {
        const std::string name = std::string("quantize_activations/") + critdim::tensor_type_name(weight) + "/512x768";
        benchmark::RegisterBenchmark(name.c_str(), bench_activations, weight, 768, 512)->Unit(benchmark::kMicrosecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
