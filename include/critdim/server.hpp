// critdim serve: generation shared with `critdim generate` (prompt rendering, one sequence's
// sampling, stop strings and streamed text), the batching engine that decodes every active
// request in one forward pass with its own steering plan, and the OpenAI-compatible HTTP
// server on top (docs/serve.md).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "critdim/model.hpp"
#include "critdim/steer.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::server {

// ---------------------------------------------------------------------------------------------
// Generation of one sequence (shared by `critdim generate` and the server, so that the same
// prompt, seed and settings give the same text in both).

// A chat template parsed once, rendering messages with the generation prompt and the
// vocabulary's bos/eos token texts. `template_name` picks a built-in template instead of the
// model's; a model without a template and no name is Error(usage) naming `where`.
class ChatFormatter {
public:
    ChatFormatter(const tokenizer::Tokenizer& tok, const std::string& where, const std::string& template_name);
    std::string render(std::span<const tokenizer::ChatMessage> messages) const;

private:
    tokenizer::ChatTemplate chat_;
    tokenizer::ChatRenderOptions options_;
};

struct GenerationParams {
    int64_t max_tokens = 16;
    model::SamplerParams sampler;
    bool ignore_eos = false;
    std::vector<std::string> stop;  // text ends before the first of these (not included)
    int top_logprobs = -1;          // -1: no log-probabilities; N >= 0: the chosen token's and N more
};

enum class FinishReason { none, stop, length };
const char* finish_reason_name(FinishReason r);  // "stop", "length", or "" for none

struct TokenLogprob {
    int32_t token = 0;
    float logprob = 0.0f;                        // log-softmax of the model's logits (before temperature)
    std::vector<std::pair<int32_t, float>> top;  // the most likely tokens, best first
};

// One sequence's decoding state: samples from its logits, ends on an end-of-generation token
// (unless ignore_eos), a stop string or max_tokens, and releases text only in whole UTF-8
// characters and never a part that could still become a stop string.
class Decoding {
public:
    Decoding(const tokenizer::Tokenizer& tok, const GenerationParams& params);

    struct Step {
        int32_t token = 0;
        std::string text;  // newly released text (may be empty)
        std::optional<TokenLogprob> logprob;
    };
    // Samples the next token from `logits` and advances; call only while !done().
    Step next(const float* logits, int64_t n_vocab);

    bool done() const { return finish_ != FinishReason::none; }
    FinishReason finish_reason() const { return finish_; }
    const std::vector<int32_t>& tokens() const { return tokens_; }  // sampled, the end token included
    const std::string& text() const { return text_; }               // released so far

private:
    std::string release(bool all);

    const tokenizer::Tokenizer& tok_;
    GenerationParams params_;
    model::Sampler sampler_;
    tokenizer::StreamDecoder stream_;
    std::vector<int32_t> tokens_;
    std::string held_;  // decoded, not yet released
    std::string text_;
    FinishReason finish_ = FinishReason::none;
};

// log-softmax of `logits` at `token`, and the `top` most likely tokens.
TokenLogprob token_logprob(const float* logits, int64_t n_vocab, int32_t token, int top);

// ---------------------------------------------------------------------------------------------
// The engine: one thread owns the model context with one KV-cache sequence per slot (and one
// for exclusive tasks); every step it decodes the next token of all active requests (and
// chunks of new prompts) in one batch. Requests wait in a bounded queue for a free slot.

struct Job {
    // Set by the submitter.
    std::vector<int32_t> prompt;
    GenerationParams params;
    std::optional<steer::Steering> steering;  // attached to the job's slot only

    // Filled by the engine; read under `mutex` (wait on `changed`).
    struct Piece {
        int32_t token;
        std::string text;
        std::optional<TokenLogprob> logprob;
    };
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<Piece> pieces;  // appended as tokens are sampled
    bool finished = false;
    FinishReason finish = FinishReason::none;
    std::string error;  // set when the engine failed this job

    std::atomic<bool> cancelled{false};  // set by the submitter (client gone)
};

struct EngineOptions {
    int n_slots = 4;          // sequences decoded together
    int64_t n_ctx = 0;        // positions per sequence
    int64_t n_batch = 512;    // tokens per forward pass (decode rows first, then prompt chunks)
    size_t queue_limit = 64;  // jobs waiting for a slot; beyond it submit() refuses
    int n_threads = 0;
};

struct EngineStats {
    int slots_busy = 0;
    size_t queued = 0;
    uint64_t requests_done = 0, requests_cancelled = 0, tokens_generated = 0, forward_passes = 0;
};

class Engine {
public:
    Engine(const model::Model& model, const tokenizer::Tokenizer& tok, const EngineOptions& options);
    ~Engine();  // stop() and join
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Queues the job; false when the queue is full or the engine is stopping.
    bool submit(std::shared_ptr<Job> job);
    // Runs `task` on the engine thread between two forward passes and waits for it: the task
    // may decode into sequence `seq`, which no request uses and which is empty before and
    // cleared after, so it never races with generation (the playground's activations). The
    // task's exception is rethrown here; false when the engine is stopping.
    using ExclusiveTask = std::function<void(model::Context& ctx, int32_t seq)>;
    bool run_exclusive(const ExclusiveTask& task);
    // Finishes every queued and running job, then stops the thread.
    void stop();
    EngineStats stats() const;
    const EngineOptions& options() const { return options_; }

private:
    struct Impl;
    EngineOptions options_;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// The HTTP server.

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;  // 0: any free port (see Server::port())
    std::string plans_dir;
    std::string dims_path;  // critical.json whose dimensions the playground marks and steers
    std::string stats_dir;  // *.stats files the playground builds whole-vector directions from
    std::string api_key;    // empty: no authentication
    std::string chat_template;
    std::string model_id;  // the id /v1/models lists; default: the file name
    size_t max_body_bytes = 1 << 20;
    int64_t max_tokens_limit = 4096;  // largest max_tokens a request may ask for
    EngineOptions engine;
};

class Server {
public:
    // Loads the plans of --plans and binds the socket; Error(usage/input) on bad options or plans.
    Server(const model::Model& model, const tokenizer::Tokenizer& tok, const ServerOptions& options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    int port() const;
    // Serves until shutdown(); in-flight requests finish first.
    void run();
    // Refuses new requests with 503, lets running ones finish, makes run() return. Thread-safe.
    void shutdown();
    std::vector<std::string> plan_names() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace critdim::server
