// Google Benchmark of steering's cost during generation: a plan with a dense `add` at every
// layer's resid_post (the most work a plan does per token) against the same model unsteered.
//
// The machine is shared, so two whole runs are not comparable; instead each benchmark
// iteration decodes one token in a plain context and one in a steered context back to back,
// and the ratio of the two sums is reported (counter `overhead_pct`). `Steer_SitesOnly` times
// the interventions alone (every steered site on one row), which is what steering adds.
//
//   critdim_bench_steer [--benchmark_min_time=20x]    model: $CRITDIM_BENCH_MODEL, or a
//   random smollm2-135m (Q8_0, 30 layers, n_embd 576) written to a temporary file
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "critdim/model.hpp"
#include "critdim/steer.hpp"

namespace {

using namespace critdim;

const model::Model& bench_model() {
    static const std::unique_ptr<model::Model> m = [] {
        const char* env = std::getenv("CRITDIM_BENCH_MODEL");
        std::string path = env && *env ? env : "";
        if (path.empty()) {
            path = (std::filesystem::temp_directory_path() / "critdim-bench-steer-smollm2-135m-q8_0.gguf").string();
            if (!std::filesystem::exists(path)) {
                model::SynthOptions o;
                o.config = model::synth_config("smollm2-135m");
                o.type = TensorType::Q8_0;
                model::synthesize(o, path);
            }
        }
        return model::Model::load(path);
    }();
    return *m;
}

steer::Plan every_layer_plan(const model::HParams& hp) {
    steer::Plan plan;
    plan.source = "bench";
    steer::Intervention iv;
    iv.where = "bench: interventions[0]";
    iv.all_layers = true;
    iv.values.n_rows = 1;
    iv.values.n_cols = hp.n_embd;
    for (int64_t i = 0; i < hp.n_embd; ++i) iv.values.data.push_back(0.01f * static_cast<float>(i % 7 - 3));
    plan.interventions.push_back(iv);
    return plan;
}

model::ContextParams params(int64_t n_ctx) {
    model::ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_batch = 1;
    cp.n_threads = 2;
    return cp;
}

void Steer_GenerateInterleaved(benchmark::State& state) {
    const model::Model& m = bench_model();
    const int64_t n_ctx = 256;
    model::Context plain(m, params(n_ctx)), steered(m, params(n_ctx));
    const steer::Plan plan = every_layer_plan(m.hparams());
    steer::Steering steering(m, std::span<const steer::Plan>(&plan, 1));
    steering.attach(steered);
    double t_plain = 0, t_steered = 0;
    int32_t tok_plain = 1, tok_steered = 1;
    int64_t n = 0;
    for (auto _ : state) {
        if (plain.seq_length() + 1 >= n_ctx) plain.clear(), steered.clear();
        // alternate which goes first so neither always runs on a cache warmed by the other
        auto step = [&](model::Context& ctx, int32_t& tok, double& sum) {
            const auto t0 = std::chrono::steady_clock::now();
            ctx.decode(std::span<const int32_t>(&tok, 1), false);
            sum += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            tok = model::Sampler::argmax(ctx.logits(0), m.hparams().n_vocab);
        };
        if (n % 2 == 0) {
            step(plain, tok_plain, t_plain);
            step(steered, tok_steered, t_steered);
        } else {
            step(steered, tok_steered, t_steered);
            step(plain, tok_plain, t_plain);
        }
        ++n;
    }
    state.counters["plain_ms_per_token"] = 1e3 * t_plain / static_cast<double>(n);
    state.counters["steered_ms_per_token"] = 1e3 * t_steered / static_cast<double>(n);
    state.counters["overhead_pct"] = 100.0 * (t_steered / t_plain - 1.0);
}
BENCHMARK(Steer_GenerateInterleaved)->Unit(benchmark::kMillisecond)->Iterations(256);

// The interventions alone, for one generated token: every steered site on one row.
void Steer_SitesOnly(benchmark::State& state) {
    const model::Model& m = bench_model();
    const model::HParams& hp = m.hparams();
    model::Context ctx(m, params(8));
    const steer::Plan plan = every_layer_plan(hp);
    steer::Steering steering(m, std::span<const steer::Plan>(&plan, 1));
    steering.attach(ctx);
    std::vector<float> row(static_cast<size_t>(hp.n_embd), 1.0f);
    const int32_t token = 1, position = 5, seq = 0;
    for (auto _ : state) {
        for (int l = 0; l < hp.n_layer; ++l) {
            const model::HookSite site{model::HookPoint::resid_post, l};
            ctx.hooks().run(model::Rows{site, row.data(), 1, hp.n_embd, {&token, 1}, {&position, 1}, {&seq, 1}});
        }
        benchmark::DoNotOptimize(row.data());
    }
}
BENCHMARK(Steer_SitesOnly)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
