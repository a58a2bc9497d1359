// critdim bench MODEL [-p 512] [-n 128] [-t 2] [-r 5] [--json]: prompt processing and
// generation tokens/s the way llama-bench measures them (pp: one batch of p random tokens
// into an empty cache; tg: n tokens decoded one at a time from an empty cache).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/steer_options.hpp"
#include "critdim/kernels.hpp"

namespace critdim::cli {

namespace {

struct Stats {
    double median, mean, stdev, min, max;
};

Stats summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    Stats s{};
    const size_t n = v.size();
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    for (double x : v) s.mean += x / static_cast<double>(n);
    for (double x : v) s.stdev += (x - s.mean) * (x - s.mean);
    s.stdev = n > 1 ? std::sqrt(s.stdev / static_cast<double>(n - 1)) : 0.0;
    s.min = v.front();
    s.max = v.back();
    return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void register_bench(CLI::App& app) {
    auto* cmd = app.add_subcommand("bench", "prompt-processing and generation speed (tokens/s), like llama-bench");
    static std::string path;
    static int64_t n_prompt = 512, n_gen = 128, n_batch = 512;
    static int reps = 5, threads = 0;
    static bool json = false;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("-p,--n-prompt", n_prompt, "prompt tokens (0: skip)")->capture_default_str();
    cmd->add_option("-n,--n-gen", n_gen, "generated tokens (0: skip)")->capture_default_str();
    cmd->add_option("-b,--batch", n_batch, "tokens per forward pass")->capture_default_str();
    cmd->add_option("-r,--repetitions", reps, "runs of each test")->capture_default_str()->check(CLI::Range(1, 1000));
    cmd->add_flag("--json", json, "machine-readable output");
    add_threads_option(cmd, threads);
    SteerOptions& steer_options = add_steer_options(cmd);
    cmd->callback([&steer_options] {
        auto m = model::Model::load(path);
        const model::HParams& hp = m->hparams();
        model::ContextParams cp;
        cp.n_ctx = std::max<int64_t>(n_prompt, n_gen) + 1;
        cp.n_batch = std::min<int64_t>(n_batch, std::max<int64_t>(n_prompt, 1));
        cp.n_threads = threads;
        model::Context ctx(*m, cp);
        const steer::Steering steering = apply_steering(steer_options, ctx);
        std::mt19937 rng(42);
        std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(hp.n_vocab - 1));
        nlohmann::json results = nlohmann::json::array();
        auto report = [&](const char* test, int64_t n, const std::vector<double>& tps) {
            const Stats s = summarize(tps);
            results.push_back({{"test", std::string(test) + std::to_string(n)},
                               {"n_tokens", n},
                               {"tokens_per_second_median", s.median},
                               {"tokens_per_second_mean", s.mean},
                               {"tokens_per_second_stdev", s.stdev},
                               {"tokens_per_second_min", s.min},
                               {"tokens_per_second_max", s.max},
                               {"samples", tps}});
            if (!json)
                std::printf("| %-28s | %6s | %2d | %5s%-5lld | %9.2f ± %6.2f (min %.2f, max %.2f) |\n",
                            std::filesystem::path(path).filename().string().c_str(), hp.arch.c_str(), ctx.n_threads(),
                            test, static_cast<long long>(n), s.median, s.stdev, s.min, s.max);
        };
        if (!json)
            std::printf("| %-28s | %6s | %2s | %-10s | %-36s |\n", "model", "arch", "t", "test", "t/s median ± stdev");
        if (n_prompt > 0) {
            std::vector<int32_t> ids(static_cast<size_t>(n_prompt));
            std::vector<double> tps;
            for (int r = -1; r < reps; ++r) {  // r = -1: warm-up
                for (auto& id : ids) id = tok(rng);
                ctx.clear();
                const auto t0 = std::chrono::steady_clock::now();
                ctx.decode(ids, false);
                const double s = seconds_since(t0);
                if (r >= 0) tps.push_back(static_cast<double>(n_prompt) / s);
            }
            report("pp", n_prompt, tps);
        }
        if (n_gen > 0) {
            std::vector<double> tps;
            for (int r = -1; r < reps; ++r) {
                ctx.clear();
                int32_t id = tok(rng);
                const auto t0 = std::chrono::steady_clock::now();
                for (int64_t i = 0; i < n_gen; ++i) {
                    ctx.decode(std::span<const int32_t>(&id, 1), false);
                    id = model::Sampler::argmax(ctx.logits(0), hp.n_vocab);
                }
                const double s = seconds_since(t0);
                if (r >= 0) tps.push_back(static_cast<double>(n_gen) / s);
            }
            report("tg", n_gen, tps);
        }
        if (json) {
            nlohmann::json j = {{"model", path},
                                {"arch", hp.arch},
                                {"file_bytes", m->file().file_size()},
                                {"threads", ctx.n_threads()},
                                {"kernels", kernels::backend_name()},
                                {"results", results}};
            std::printf("%s\n", j.dump(2).c_str());
        }
    });
}

}  // namespace critdim::cli
