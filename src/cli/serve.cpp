// critdim serve MODEL [--host H] [--port P] [--plans DIR] [--api-key KEY] [--parallel N]: the
// OpenAI-compatible HTTP server with per-request steering (docs/serve.md). SIGINT/SIGTERM
// stop accepting requests, let the running ones finish and exit 0.
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/server.hpp"

namespace critdim::cli {

void register_serve(CLI::App& app) {
    auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server with per-request steering");
    static std::string path;
    static server::ServerOptions o;
    static int threads = 0;
    static int64_t n_ctx = 0;
    static size_t max_body_kib = 1024;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("--host", o.host, "address to listen on (loopback unless told otherwise)")->capture_default_str();
    cmd->add_option("--port", o.port, "TCP port; 0 picks a free one (printed at start)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    cmd->add_option("--plans", o.plans_dir, "folder of steering plans (*.json), requested by file name without .json")
        ->check(CLI::ExistingDirectory);
    cmd->add_option("--dims", o.dims_path, "critical.json: the playground page marks and steers its dimensions")
        ->check(CLI::ExistingFile);
    cmd->add_option("--stats", o.stats_dir, "folder of *.stats files: the playground builds whole-vector directions")
        ->check(CLI::ExistingDirectory);
    cmd->add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' on /v1/*");
    cmd->add_option("--parallel", o.engine.n_slots, "requests decoded together in one batch")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    cmd->add_option("--queue", o.engine.queue_limit, "requests that may wait for a free slot; beyond: 503")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 20));
    cmd->add_option("--ctx", n_ctx, "positions per request: prompt + max_tokens (default: min(training context, 4096))")
        ->check(CLI::Range(1, 1 << 24));
    cmd->add_option("--max-tokens", o.max_tokens_limit, "largest max_tokens a request may ask for")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 24));
    cmd->add_option("--max-body", max_body_kib, "largest request body in KiB; beyond: 413")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--batch", o.engine.n_batch, "tokens per forward pass")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 16));
    cmd->add_option("--chat-template", o.chat_template,
                    "a built-in chat template instead of the model's (llama3, llama2, chatml, gemma, phi3, mistral, "
                    "smollm, deepseek-r1)");
    cmd->add_option("--alias", o.model_id, "model id that /v1/models lists (default: the file name)");
    add_threads_option(cmd, threads);
    cmd->callback([] {
        auto m = model::Model::load(path);
        auto tok = tokenizer::Tokenizer::from_gguf(m->file());
        o.engine.n_ctx = n_ctx > 0 ? n_ctx : std::min<int64_t>(m->hparams().n_ctx_train, 4096);
        o.engine.n_threads = threads;
        o.max_body_bytes = max_body_kib * 1024;

        // Signals go to one thread that waits for them; every other thread (httplib's workers,
        // the engine, the pool) inherits the blocked mask. A client that leaves must not kill us.
        std::signal(SIGPIPE, SIG_IGN);
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

        server::Server server(*m, *tok, o);
        std::fprintf(stderr,
                     "critdim serve: %s on http://%s:%d (%d parallel, %lld positions each%s%s; playground at /)\n",
                     path.c_str(), o.host.c_str(), server.port(), o.engine.n_slots,
                     static_cast<long long>(o.engine.n_ctx), server.plan_names().empty() ? "" : ", plans: ",
                     [&] {
                         std::string names;
                         for (const std::string& n : server.plan_names()) names += (names.empty() ? "" : " ") + n;
                         return names;
                     }()
                         .c_str());
        std::fflush(stderr);
        std::atomic<bool> signalled{false};
        std::thread waiter([&server, &signalled, stop_signals] {
            int sig = 0;
            sigwait(&stop_signals, &sig);
            signalled = true;
            std::fprintf(stderr, "critdim serve: %s: finishing running requests\n",
                         sig == SIGINT ? "SIGINT" : "SIGTERM");
            server.shutdown();
        });
        server.run();
        if (!signalled) pthread_kill(waiter.native_handle(), SIGTERM);  // run() ended by itself
        waiter.join();
        std::fprintf(stderr, "critdim serve: stopped\n");
    });
}

}  // namespace critdim::cli
