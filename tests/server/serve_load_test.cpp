// A bounded load test: many concurrent clients, a fixed number of requests (greedy, a third
// unsteered, a third with a preloaded plan, a third with an inline plan at alpha 0.5), every
// answer compared with the text the same request gives alone, and the server's memory
// compared between the two halves of the run. It stops by itself.
//
// Default: the tiny model, 8 clients, 48 requests. CRITDIM_SERVE_LOAD=full: 32 clients, 256
// requests, --parallel 32; CRITDIM_SERVE_LOAD_MODEL=PATH serves that model instead (e.g. a
// `critdim synth --config smollm2-135m --type q8_0` file, as in ../shared/peers/PEERS.md);
// CRITDIM_SERVE_LOAD_THREADS=N sets the server's -t (default 1, full: 2).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "server/serve_test_util.hpp"

namespace critdim::server::test {
namespace {

TEST(ServeLoad, ConcurrentClientsAllAnsweredMemoryStable) {
    const char* mode = std::getenv("CRITDIM_SERVE_LOAD");
    const bool full = mode && std::string(mode) == "full";
    const char* model_env = std::getenv("CRITDIM_SERVE_LOAD_MODEL");
    const std::string model = model_env && *model_env ? model_env : tiny_model();
    const char* threads_env = std::getenv("CRITDIM_SERVE_LOAD_THREADS");
    const std::string threads = threads_env && *threads_env ? threads_env : full ? "2" : "1";
    const int n_clients = full ? 32 : 8, n_requests = full ? 256 : 48, max_tokens = 32;
    ServerProcess s(model, {"--plans", plans_dir(), "--parallel", std::to_string(n_clients), "--queue",
                            std::to_string(n_clients), "--ctx", "128", "-t", threads});

    const std::vector<std::string> prompts = {"The quick brown fox jumps over the", "Once upon a time there was a",
                                              "In the beginning the small robot", "She opened the old wooden door and"};
    auto body = [&](int i) {
        json b = {{"prompt", prompts[static_cast<size_t>(i) % prompts.size()]},
                  {"max_tokens", max_tokens},
                  {"temperature", 0},
                  {"ignore_eos", true}};
        if (i % 3 == 1) b["steering"] = "up";
        if (i % 3 == 2) b["steering"] = {{"plan", up_plan()}, {"alpha", 0.5}};
        return b;
    };
    // Each distinct request alone first: the answers every concurrent one must match.
    std::vector<std::string> expect(12);
    for (int i = 0; i < 12; ++i) {
        const Reply r = post(s, "/v1/completions", body(i));
        ASSERT_EQ(r.status, 200) << r.raw;
        expect[static_cast<size_t>(i)] = r.body["choices"][0]["text"].get<std::string>();
    }

    std::atomic<int> next{0}, ok{0};
    std::atomic<int64_t> tokens{0};
    std::mutex latency_mutex;
    std::vector<double> latencies;
    std::vector<std::string> failures;
    auto run_half = [&](int end) {
        std::vector<std::thread> clients;
        for (int c = 0; c < n_clients; ++c)
            clients.emplace_back([&] {
                for (int i = next++; i < end; i = next++) {
                    const auto t0 = std::chrono::steady_clock::now();
                    const Reply r = post(s, "/v1/completions", body(i));
                    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    std::lock_guard lock(latency_mutex);
                    latencies.push_back(dt);
                    if (r.status == 200 && r.body["choices"][0]["text"] == expect[static_cast<size_t>(i % 12)]) {
                        ++ok;
                        tokens += r.body["usage"]["completion_tokens"].get<int64_t>();
                    } else {
                        failures.push_back("request " + std::to_string(i) + ": " + std::to_string(r.status) + " " +
                                           r.raw.substr(0, 300));
                    }
                }
            });
        for (auto& t : clients) t.join();
        next = end;  // the clients overshoot by one claim each
    };
    const long rss_warm = s.rss_kib();
    const auto t0 = std::chrono::steady_clock::now();
    run_half(n_requests / 2);
    const long rss_half = s.rss_kib();
    run_half(n_requests);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long rss_end = s.rss_kib();

    for (const std::string& f : failures) ADD_FAILURE() << f;
    EXPECT_EQ(ok.load(), n_requests);
    std::sort(latencies.begin(), latencies.end());
    const auto pct = [&](double p) {
        return latencies[static_cast<size_t>(p * static_cast<double>(latencies.size() - 1))];
    };
    std::fprintf(
        stderr,
        "load: %s, -t %s, %d clients, %d requests (%d ok) in %.2f s: %.2f requests/s, %.1f generated tokens/s, "
        "latency p50 %.3f s p95 %.3f s max %.3f s; RSS warm %ld KiB, half %ld KiB, end %ld KiB\n",
        model.c_str(), threads.c_str(), n_clients, n_requests, ok.load(), wall, n_requests / wall,
        static_cast<double>(tokens.load()) / wall, pct(0.5), pct(0.95), latencies.back(), rss_warm, rss_half, rss_end);
    // Memory stable: the second half of the run does not grow the server (allocator slack aside).
    EXPECT_LE(rss_end - rss_half, std::max(8L * 1024, rss_half / 20))
        << "RSS " << rss_half << " -> " << rss_end << " KiB";
    EXPECT_EQ(get(s, "/health").body["slots_busy"], 0);
    EXPECT_EQ(s.stop(), 0) << s.log();
}

}  // namespace
}  // namespace critdim::server::test
