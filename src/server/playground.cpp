// The playground: the page at / (embedded files, src/server/web/) and its JSON endpoints
// under /v1/critdim/ (docs/playground.md). Activations run on the engine thread between two
// forward passes (Engine::run_exclusive), so they never race with generation.
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "critdim/steer.hpp"
#include "server/activations.hpp"
#include "server/server_impl.hpp"
#include "server/web_assets.hpp"

namespace critdim::server {

namespace {

// The page may talk to the server that served it and to nothing else; the browser enforces
// it, and the browser tests check the network log on top.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'";

void send_asset(httplib::Response& res, const WebAsset& asset) {
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("Cache-Control", "no-cache");
    res.set_content(asset.body.data(), asset.body.size(), asset.content_type);
}

// `layers` of a direction request: {"from": A, "to": B}, inclusive; default every block.
std::pair<int, int> layer_range(const json& j, int64_t n_layer) {
    if (!j.contains("layers") || j["layers"].is_null()) return {0, static_cast<int>(n_layer - 1)};
    const json& l = j["layers"];
    if (!l.is_object() || !l.contains("from") || !l.contains("to"))
        http_fail(400, "field 'layers': expected {\"from\": A, \"to\": B}", "layers");
    const auto from = static_cast<int>(get_int(l["from"], "layers.from", 0, n_layer - 1));
    const auto to = static_cast<int>(get_int(l["to"], "layers.to", from, n_layer - 1));
    return {from, to};
}

// Removes a temporary file however the request ends.
struct TempFile {
    std::string path;
    ~TempFile() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
};

}  // namespace

void Server::Impl::playground_routes() {
    http.Get("/",
             [](const httplib::Request&, httplib::Response& res) { send_asset(res, *find_web_asset("index.html")); });
    http.Get(R"(/web/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
        const WebAsset* asset = find_web_asset(req.matches[1].str());
        if (!asset) return send_error(res, 404, "no page file " + req.path);
        send_asset(res, *asset);
    });

    // What the page starts from: the model, the critical dimensions and the stats files.
    http.Get("/v1/critdim/dims", [this](const httplib::Request&, httplib::Response& res) {
        const model::HParams& hp = model.hparams();
        json domains = json::array();
        for (const CriticalDomain& d : playground.domains) {
            json dims = json::array();
            for (const CriticalDim& c : d.dims)
                dims.push_back({{"dim", c.dim}, {"rank", c.rank}, {"score", c.score}, {"layers", c.layers}});
            domains.push_back({{"name", d.name}, {"dims", dims}});
        }
        json stats = json::array();
        for (const StatsEntry& s : playground.stats)
            stats.push_back({{"name", s.name}, {"domain", s.domain}, {"n_docs", s.n_docs}});
        json out = {{"model",
                     {{"id", options.model_id},
                      {"arch", hp.arch},
                      {"n_layer", hp.n_layer},
                      {"n_embd", hp.n_embd},
                      {"n_ctx", engine->options().n_ctx},
                      {"max_tokens", options.max_tokens_limit},
                      {"chat", chat.has_value()}}},
                    {"critical", {{"path", playground.dims_path}, {"domains", domains}}},
                    {"stats", stats}};
        res.set_content(dump(out), "application/json");
    });

    http.Post("/v1/critdim/activations", [this](const httplib::Request& req, httplib::Response& res) {
        if (shutting_down) return send_error(res, 503, "the server is shutting down");
        const model::HParams& hp = model.hparams();
        ActivationQuery q;
        std::optional<steer::Steering> steering;
        try {
            const json j = parse_body_object(req.body);
            ApiRequest r;
            if (!j.contains("prompt")) http_fail(400, "field 'prompt' is required", "prompt");
            r.chat = j.contains("chat") && get_bool(j["chat"], "chat");
            const std::string& prompt = get_string(j["prompt"], "prompt");
            if (r.chat)
                r.messages = {{"user", prompt}};
            else
                r.prompt = prompt;
            q.tokens = prompt_tokens(r);
            if (static_cast<int64_t>(q.tokens.size()) > engine->options().n_ctx)
                http_fail(400,
                          "the prompt has " + std::to_string(q.tokens.size()) + " tokens; the context is " +
                              std::to_string(engine->options().n_ctx) + " tokens (--ctx)",
                          "prompt");
            if (j.contains("layer")) q.layer = static_cast<int>(get_int(j["layer"], "layer", 0, hp.n_layer - 1));
            if (j.contains("top"))
                q.top = static_cast<int>(get_int(j["top"], "top", 0, std::min<int64_t>(hp.n_embd, 256)));
            if (j.contains("skip_first")) q.skip_first = get_bool(j["skip_first"], "skip_first");
            q.extra_dims = playground.critical_dims();
            if (j.contains("dims")) {
                if (!j["dims"].is_array()) http_fail(400, "field 'dims': expected a list of dimensions", "dims");
                for (size_t i = 0; i < j["dims"].size(); ++i)
                    q.extra_dims.push_back(get_int(j["dims"][i], "dims[" + std::to_string(i) + "]", 0, hp.n_embd - 1));
            }
            if (j.contains("steering") && !j["steering"].is_null()) {
                r.steering = parse_steering(j["steering"]);
                AppliedSteering applied;
                steering = steering_of(r, applied);
            }
        } catch (const HttpError& e) {
            return send_error(res, e.status, e.message, e.param);
        }

        const auto t0 = std::chrono::steady_clock::now();
        Activations a;
        const bool ran = engine->run_exclusive([&](model::Context& ctx, int32_t seq) {
            if (steering) {  // only this request's rows, as a generation request's plan
                steering->set_sequences({seq});
                steering->attach(ctx);
            }
            try {
                a = read_activations(ctx, seq, q);
            } catch (...) {
                if (steering) steering->detach(ctx);
                throw;
            }
            if (steering) steering->detach(ctx);
        });
        if (!ran) return send_error(res, 503, "the server is shutting down");
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

        json tokens = json::array();
        for (size_t t = 0; t < q.tokens.size(); ++t)
            tokens.push_back({{"id", q.tokens[t]}, {"text", tok.token_to_piece(q.tokens[t], true)}, {"pos", t}});
        const std::vector<int64_t> critical = playground.critical_dims();
        json dims = json::array();
        const size_t C = a.dims.size();
        for (size_t c = 0; c < C; ++c) {
            json domains = json::array();
            for (const CriticalDomain& d : playground.domains)
                for (const CriticalDim& cd : d.dims)
                    if (cd.dim == a.dims[c]) domains.push_back(d.name);
            const auto first = a.profile.begin() + static_cast<ptrdiff_t>(c * static_cast<size_t>(hp.n_layer));
            dims.push_back({{"dim", a.dims[c]},
                            {"critical", domains},
                            {"max_abs", a.profile[c * static_cast<size_t>(hp.n_layer) + static_cast<size_t>(q.layer)]},
                            {"profile", std::vector<float>(first, first + hp.n_layer)}});
        }
        json values = json::array();
        for (int64_t t = 0; t < a.n_tokens; ++t) {
            const auto row = a.values.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(t) * C);
            values.push_back(std::vector<float>(row, row + static_cast<ptrdiff_t>(C)));
        }
        json out = {{"site", "resid_post." + std::to_string(q.layer)},
                    {"layer", q.layer},
                    {"n_layer", hp.n_layer},
                    {"n_embd", hp.n_embd},
                    {"skip_first", q.skip_first},
                    {"steered", steering.has_value()},
                    {"tokens", tokens},
                    {"dims", dims},
                    {"values", values},
                    {"compute_ms", ms}};
        res.set_content(dump(out), "application/json");
    });

    // The whole-vector direction (difference of means of two --stats files, every dimension),
    // as a plan the page scales with its slider.
    http.Post("/v1/critdim/direction", [this](const httplib::Request& req, httplib::Response& res) {
        try {
            const json j = parse_body_object(req.body);
            steer::VectorOptions o;
            for (const char* key : {"pos", "neg"}) {
                if (!j.contains(key)) http_fail(400, std::string("field '") + key + "' is required", key);
                const std::string& name = get_string(j[key], key);
                const StatsEntry* s = playground.find_stats(name);
                if (!s) {
                    std::string known;
                    for (const StatsEntry& e : playground.stats) known += (known.empty() ? "" : ", ") + e.name;
                    http_fail(400,
                              std::string("field '") + key + "': no stats file named '" + name +
                                  "' (loaded with --stats: " + (known.empty() ? "none" : known) + ")",
                              key);
                }
                (std::string(key) == "pos" ? o.pos : o.neg) = s->path;
            }
            std::tie(o.layer_first, o.layer_last) = layer_range(j, model.hparams().n_layer);
            o.norm = steer::VectorNorm::none;
            steer::Plan plan;
            try {
                plan = steer::build_vector_plan(o);
            } catch (const Error& e) {
                http_fail(400, std::string("direction: ") + e.what());
            }
            res.set_content(dump({{"plan", json::parse(steer::plan_to_json(plan))}}), "application/json");
        } catch (const HttpError& e) {
            send_error(res, e.status, e.message, e.param);
        }
    });

    // The plan as a llama.cpp control vector (GGUF bytes), or 400 saying why it cannot be one.
    http.Post("/v1/critdim/cvector", [this](const httplib::Request& req, httplib::Response& res) {
        static std::atomic<uint64_t> counter{0};
        try {
            const json j = parse_body_object(req.body);
            if (!j.contains("plan")) http_fail(400, "field 'plan' is required", "plan");
            const SteeringRequest s = parse_steering(json{{"plan", j["plan"]}});
            if (!s.plan) http_fail(400, "field 'plan': expected a plan object", "plan");
            TempFile out{(std::filesystem::temp_directory_path() /
                          ("critdim-cvector-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".gguf"))
                             .string()};
            try {
                const steer::Plan plan = steer::parse_plan(s.plan->dump(), "plan", "");
                steer::write_cvector(steer::plan_to_cvector(plan, &model), out.path);
            } catch (const Error& e) {
                http_fail(400, std::string("cvector: ") + e.what(), "plan");
            }
            const std::string bytes = read_text_file(out.path);
            res.set_header("Content-Disposition", "attachment; filename=\"control_vector.gguf\"");
            res.set_content(bytes, "application/octet-stream");
        } catch (const HttpError& e) {
            send_error(res, e.status, e.message, e.param);
        }
    });
}

}  // namespace critdim::server
