// The OpenAI-compatible HTTP layer: routes, authentication, limits, request -> Job, and the
// responses (whole or as server-sent events). Generation itself happens in the engine.
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "critdim/server.hpp"
#include "server/server_impl.hpp"

namespace critdim::server {

namespace {

const char* error_type(int status) {
    switch (status) {
        case 401:
            return "authentication_error";
        case 404:
            return "not_found_error";
        case 413:
            return "request_too_large";
        case 503:
            return "server_busy";
        default:
            return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

// A piece of a token as text for log-probability listings (may be part of a character).
std::string piece_of(const tokenizer::Tokenizer& tok, int32_t id) { return tok.token_to_piece(id, true); }

json bytes_of(const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(c);
    return b;
}

// httplib 0.11 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when Debian built
// the library): 32 clients connecting at once overflow it, and each dropped handshake costs a
// one-second retransmission. Calling listen() again on the bound socket raises the backlog.
void widen_backlog(int port) {
    for (int fd = 0; fd < 1024; ++fd) {
        int accepting = 0;
        socklen_t len = sizeof(accepting);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) continue;
        sockaddr_storage addr{};
        socklen_t addr_len = sizeof(addr);
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) continue;
        int bound = -1;
        if (addr.ss_family == AF_INET) bound = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
        if (addr.ss_family == AF_INET6) bound = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
        if (bound == port) ::listen(fd, SOMAXCONN);
    }
}

}  // namespace

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param) {
    res.status = status;
    json e = {{"message", message}, {"type", error_type(status)}, {"code", status}};
    e["param"] = param.empty() ? json() : json(param);
    res.set_content(dump({{"error", e}}), "application/json");
}

int64_t unix_time() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void Server::Impl::load_plans() {
    if (options.plans_dir.empty()) return;
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(options.plans_dir, ec)) throw_usage("--plans: '" + options.plans_dir + "' is not a folder");
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(options.plans_dir))
        if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& p : files) {
        steer::Plan plan = steer::load_plan(p.string());
        steer::Steering check(model, std::span<const steer::Plan>(&plan, 1));  // refuses a plan the model cannot take
        plans.emplace(p.stem().string(), std::move(plan));
    }
}

std::vector<int32_t> Server::Impl::prompt_tokens(const ApiRequest& r) const {
    std::vector<int32_t> ids;
    if (r.chat) {
        if (!chat) http_fail(400, "this model has no chat template: " + chat_error, "messages");
        std::string rendered;
        try {
            rendered = chat->render(r.messages);
        } catch (const Error& e) {
            http_fail(400, std::string("messages: the chat template refused them: ") + e.what(), "messages");
        }
        ids = tok.encode(rendered, false, true);  // the template writes BOS where the model wants it
    } else if (r.prompt_is_ids) {
        const int64_t n_vocab = model.hparams().n_vocab;
        for (size_t i = 0; i < r.prompt_ids.size(); ++i) {
            if (r.prompt_ids[i] >= n_vocab)
                http_fail(400,
                          "field 'prompt[" + std::to_string(i) + "]': token id " + std::to_string(r.prompt_ids[i]) +
                              " is out of range (vocabulary has " + std::to_string(n_vocab) + " tokens)",
                          "prompt");
            ids.push_back(static_cast<int32_t>(r.prompt_ids[i]));
        }
    } else {
        ids = tok.encode(r.prompt, true, false);  // as `critdim generate --prompt`
    }
    if (ids.empty())
        http_fail(400, "the prompt is empty (and the vocabulary adds no BOS)", r.chat ? "messages" : "prompt");
    return ids;
}

std::optional<steer::Steering> Server::Impl::steering_of(const ApiRequest& r, AppliedSteering& applied) const {
    if (!r.steering) return std::nullopt;
    const SteeringRequest& s = *r.steering;
    steer::Plan plan;
    try {
        if (s.plan) {
            plan = steer::parse_plan(s.plan->dump(), "steering.plan", "");
            applied.plan = "inline";
        } else {
            auto it = plans.find(s.name);
            if (it == plans.end()) {
                std::string known;
                for (const auto& [name, p] : plans) known += (known.empty() ? "" : ", ") + name;
                http_fail(400,
                          "field 'steering': no plan named '" + s.name +
                              "' (loaded with --plans: " + (known.empty() ? "none" : known) + ")",
                          "steering");
            }
            plan = it->second;
            applied.plan = s.name;
        }
        if (s.alpha) plan.alpha = *s.alpha;
        applied.alpha = plan.alpha;
        steer::Steering steering(model, std::span<const steer::Plan>(&plan, 1));
        applied.steps = steering.describe();
        return steering;
    } catch (const Error& e) {
        http_fail(400, std::string("steering: ") + e.what(), "steering");
    }
}

json Server::Impl::logprobs_json(const ApiRequest& r, const std::vector<Job::Piece>& pieces) const {
    if (r.chat) {
        json content = json::array();
        for (const Job::Piece& p : pieces) {
            if (!p.logprob) continue;
            const std::string t = piece_of(tok, p.token);
            json top = json::array();
            for (const auto& [id, lp] : p.logprob->top) {
                const std::string tt = piece_of(tok, id);
                top.push_back({{"token", tt}, {"logprob", lp}, {"bytes", bytes_of(tt)}});
            }
            content.push_back(
                {{"token", t}, {"logprob", p.logprob->logprob}, {"bytes", bytes_of(t)}, {"top_logprobs", top}});
        }
        return {{"content", content}};
    }
    json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
    size_t offset = 0;
    for (const Job::Piece& p : pieces) {
        if (!p.logprob) continue;
        const std::string t = piece_of(tok, p.token);
        tokens.push_back(t);
        token_logprobs.push_back(p.logprob->logprob);
        json top = json::object();
        for (const auto& [id, lp] : p.logprob->top) top[piece_of(tok, id)] = lp;
        top_logprobs.push_back(top);
        offsets.push_back(offset);
        offset += t.size();
    }
    return {{"tokens", tokens},
            {"token_logprobs", token_logprobs},
            {"top_logprobs", top_logprobs},
            {"text_offset", offsets}};
}

json Server::Impl::response_json(const ApiRequest& r, const std::string& id, const Job& job, size_t n_prompt,
                                 const std::optional<AppliedSteering>& applied) const {
    std::string text;
    for (const Job::Piece& p : job.pieces) text += p.text;
    json choice = {{"index", 0}, {"finish_reason", finish_reason_name(job.finish)}};
    choice["logprobs"] = r.top_logprobs >= 0 ? logprobs_json(r, job.pieces) : json();
    if (r.chat)
        choice["message"] = {{"role", "assistant"}, {"content", text}};
    else
        choice["text"] = text;
    json out = {{"id", id},
                {"object", r.chat ? "chat.completion" : "text_completion"},
                {"created", unix_time()},
                {"model", options.model_id},
                {"choices", json::array({choice})},
                {"usage",
                 {{"prompt_tokens", n_prompt},
                  {"completion_tokens", job.pieces.size()},
                  {"total_tokens", n_prompt + job.pieces.size()}}}};
    if (applied)
        out["steering"] = {{"plan", applied->plan}, {"alpha", applied->alpha}, {"steps", applied->steps}};
    else
        out["steering"] = nullptr;
    return out;
}

void Server::Impl::completion(const httplib::Request& req, httplib::Response& res, bool chat_endpoint) {
    if (shutting_down) return send_error(res, 503, "the server is shutting down");
    ApiRequest r;
    auto job = std::make_shared<Job>();
    std::optional<AppliedSteering> applied;
    try {
        r = parse_request(req.body, chat_endpoint);
        if (!r.model.empty() && r.model != options.model_id)
            http_fail(404, "model '" + r.model + "' is not served here (this server serves '" + options.model_id + "')",
                      "model");
        job->prompt = prompt_tokens(r);
        const auto n_prompt = static_cast<int64_t>(job->prompt.size());
        const int64_t n_ctx = engine->options().n_ctx;
        if (n_prompt >= n_ctx)
            http_fail(400,
                      "the prompt has " + std::to_string(n_prompt) + " tokens; the context is " +
                          std::to_string(n_ctx) + " tokens per sequence (--ctx)",
                      r.chat ? "messages" : "prompt");
        int64_t max_tokens = r.max_tokens.value_or(r.chat ? std::min(options.max_tokens_limit, n_ctx - n_prompt) : 16);
        if (max_tokens > options.max_tokens_limit)
            http_fail(400,
                      "field 'max_tokens': " + std::to_string(max_tokens) + " exceeds the server's limit of " +
                          std::to_string(options.max_tokens_limit) + " tokens per request (--max-tokens)",
                      "max_tokens");
        if (n_prompt + max_tokens > n_ctx)
            http_fail(400,
                      "the prompt (" + std::to_string(n_prompt) + " tokens) + max_tokens (" +
                          std::to_string(max_tokens) + ") exceed the context of " + std::to_string(n_ctx) +
                          " tokens per sequence (--ctx)",
                      "max_tokens");
        job->params.max_tokens = max_tokens;
        job->params.sampler.temperature = static_cast<float>(r.temperature);
        job->params.sampler.top_p = static_cast<float>(r.top_p);
        job->params.sampler.top_k = static_cast<int>(r.top_k);
        job->params.sampler.seed = r.seed ? *r.seed : std::random_device{}();
        job->params.stop = r.stop;
        job->params.ignore_eos = r.ignore_eos;
        job->params.top_logprobs = r.top_logprobs;
        AppliedSteering a;
        job->steering = steering_of(r, a);
        if (job->steering) applied = a;
    } catch (const HttpError& e) {
        return send_error(res, e.status, e.message, e.param);
    }
    if (!engine->submit(job))
        return send_error(res, 503,
                          shutting_down ? "the server is shutting down"
                                        : "the server is busy: " + std::to_string(engine->options().queue_limit) +
                                              " requests are already waiting (--queue); retry later");

    const std::string id = (r.chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id++);
    const size_t n_prompt = job->prompt.size();
    if (!r.stream) {
        std::unique_lock lock(job->mutex);
        job->changed.wait(lock, [&] { return job->finished; });
        if (!job->error.empty()) return send_error(res, 500, job->error);
        res.set_content(dump(response_json(r, id, *job, n_prompt, applied)), "application/json");
        return;
    }

    // Server-sent events: one chunk per released piece of text, then the finish reason, then [DONE].
    const int64_t created_at = unix_time();
    auto chunk = [this, r, id, created_at](const json& delta_or_text, const json& finish, const json& logprobs) {
        json choice = {{"index", 0}, {"finish_reason", finish}, {"logprobs", logprobs}};
        if (r.chat)
            choice["delta"] = delta_or_text;
        else
            choice["text"] = delta_or_text;
        return json{{"id", id},
                    {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
                    {"created", created_at},
                    {"model", options.model_id},
                    {"choices", json::array({choice})}};
    };
    auto sent = std::make_shared<size_t>(0);
    auto started = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, job, r, chunk, sent, started, n_prompt, applied](size_t, httplib::DataSink& sink) {
            auto send = [&](const json& j) {
                const std::string event = "data: " + dump(j) + "\n\n";
                return sink.write(event.data(), event.size());
            };
            if (r.chat && !*started) {
                *started = true;
                if (!send(chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr))) return false;
            }
            std::vector<Job::Piece> fresh;
            bool finished = false;
            FinishReason finish = FinishReason::none;
            std::string error;
            {
                std::unique_lock lock(job->mutex);
                job->changed.wait_for(lock, std::chrono::milliseconds(500),
                                      [&] { return job->finished || job->pieces.size() > *sent; });
                fresh.assign(job->pieces.begin() + static_cast<std::ptrdiff_t>(*sent), job->pieces.end());
                *sent = job->pieces.size();
                finished = job->finished;
                finish = job->finish;
                error = job->error;
            }
            if (fresh.empty() && !finished) {
                // Nothing new yet (queued, or a long prompt): a comment line keeps the connection
                // checked, so a client that left is noticed and its job cancelled.
                const char keepalive[] = ": waiting\n\n";
                return sink.write(keepalive, sizeof(keepalive) - 1);
            }
            for (const Job::Piece& p : fresh) {
                if (p.text.empty() && !p.logprob) continue;
                const json text = r.chat ? json{{"content", p.text}} : json(p.text);
                const json lp = p.logprob ? logprobs_json(r, {p}) : json();
                if (!send(chunk(text, nullptr, lp))) return false;
            }
            if (!finished) return true;
            if (!error.empty()) {
                send({{"error", {{"message", error}, {"type", "server_error"}, {"code", 500}}}});
            } else {
                json last = chunk(r.chat ? json::object() : json(""), finish_reason_name(finish), nullptr);
                last["usage"] = {
                    {"prompt_tokens", n_prompt}, {"completion_tokens", *sent}, {"total_tokens", n_prompt + *sent}};
                last["steering"] =
                    applied ? json{{"plan", applied->plan}, {"alpha", applied->alpha}, {"steps", applied->steps}}
                            : json();
                if (!send(last)) return false;
            }
            const char done[] = "data: [DONE]\n\n";
            if (!sink.write(done, sizeof(done) - 1)) return false;
            sink.done();
            return true;
        },
        [job](bool success) {
            if (!success) job->cancelled = true;  // the client left: free the slot
        });
}

void Server::Impl::routes() {
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        // The page's own files are public; what it asks of /v1 carries the key the person types in.
        const bool page = req.method == "GET" && (req.path == "/" || req.path.rfind("/web/", 0) == 0);
        if (options.api_key.empty() || req.path == "/health" || page)
            return httplib::Server::HandlerResponse::Unhandled;
        const std::string auth = req.get_header_value("Authorization");
        if (auth != "Bearer " + options.api_key) {
            send_error(
                res, 401,
                auth.empty() ? "missing API key: send the header 'Authorization: Bearer KEY'" : "invalid API key");
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 413) return send_error(res, 413, "request body too large (limit set with --max-body)");
        if (res.status == 404) return send_error(res, 404, "no endpoint " + req.method + " " + req.path);
        if (res.status == 405) return send_error(res, 405, "method " + req.method + " not allowed on " + req.path);
        send_error(res, res.status, "HTTP error " + std::to_string(res.status));
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        const EngineStats s = engine->stats();
        json j = {{"status", shutting_down ? "shutting down" : "ok"},
                  {"slots_total", engine->options().n_slots},
                  {"slots_busy", s.slots_busy},
                  {"queued", s.queued},
                  {"requests_done", s.requests_done},
                  {"requests_cancelled", s.requests_cancelled},
                  {"tokens_generated", s.tokens_generated},
                  {"forward_passes", s.forward_passes}};
        res.status = shutting_down ? 503 : 200;
        res.set_content(dump(j), "application/json");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        json plan_list = json::array();
        for (const auto& [name, p] : plans) plan_list.push_back(name);
        const model::HParams& hp = model.hparams();
        json m = {{"id", options.model_id},
                  {"object", "model"},
                  {"created", created},
                  {"owned_by", "critdim"},
                  {"meta",
                   {{"arch", hp.arch},
                    {"n_layer", hp.n_layer},
                    {"n_embd", hp.n_embd},
                    {"n_vocab", hp.n_vocab},
                    {"n_ctx", engine->options().n_ctx},
                    {"plans", plan_list}}}};
        res.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
    });
    http.Post("/v1/completions",
              [this](const httplib::Request& req, httplib::Response& res) { completion(req, res, false); });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) { completion(req, res, true); });
}

Server::Server(const model::Model& model, const tokenizer::Tokenizer& tok, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(model, tok, options)) {
    Impl& s = *impl_;
    if (s.options.model_id.empty()) s.options.model_id = std::filesystem::path(model.path()).filename().string();
    s.load_plans();
    s.playground = load_playground_data(s.options.dims_path, s.options.stats_dir, model);
    try {
        s.chat.emplace(tok, model.path(), s.options.chat_template);
    } catch (const Error& e) {
        if (!s.options.chat_template.empty()) throw;
        s.chat_error = e.what();
    }
    s.engine = std::make_unique<Engine>(model, tok, s.options.engine);
    // One worker per slot and queued request, and a few more, so a full queue is answered
    // with 503 instead of waiting for a thread.
    const size_t n_workers = static_cast<size_t>(s.options.engine.n_slots) + s.options.engine.queue_limit + 4;
    s.http.new_task_queue = [n_workers] { return new httplib::ThreadPool(n_workers); };
    s.http.set_payload_max_length(s.options.max_body_bytes);
    s.http.set_keep_alive_timeout(2);
    s.routes();
    s.playground_routes();
    if (s.options.port == 0) {
        s.port = s.http.bind_to_any_port(s.options.host);
    } else {
        s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
    }
    if (s.port <= 0)
        throw_io(s.options.host + ":" + std::to_string(s.options.port), "cannot listen (address in use or not local?)");
    widen_backlog(s.port);
}

Server::~Server() {
    if (impl_ && impl_->engine) impl_->engine->stop();
}

int Server::port() const { return impl_->port; }

void Server::run() {
    // Returns once shutdown() stopped it and every handler (so every running request) finished.
    if (!impl_->shutting_down) impl_->http.listen_after_bind();
    impl_->listen_done = true;
    impl_->engine->stop();
}

void Server::shutdown() {
    impl_->shutting_down = true;
    // httplib's stop() does nothing before the server runs: wait until run() is listening
    // (or has given up) so a signal during start-up is not lost.
    while (!impl_->listen_done && !impl_->http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    impl_->http.stop();
}

std::vector<std::string> Server::plan_names() const {
    std::vector<std::string> names;
    for (const auto& [name, p] : impl_->plans) names.push_back(name);
    return names;
}

}  // namespace critdim::server
