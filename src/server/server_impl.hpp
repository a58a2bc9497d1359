// Internal: the server's state shared by its route files (http.cpp: the OpenAI endpoints;
// playground.cpp: the web page and its /v1/critdim/* endpoints), and the JSON error reply
// every refusal uses. Only files compiled with httplib's flags include it.
#pragma once

#include <httplib.h>

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "critdim/server.hpp"
#include "server/playground_data.hpp"
#include "server/request.hpp"

namespace critdim::server {

using json = nlohmann::json;

std::string dump(const json& j);  // compact, invalid UTF-8 replaced
// {"error": {"message", "type", "code", "param"}} with the status.
void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "");
int64_t unix_time();

// What a response says about the steering it applied.
struct AppliedSteering {
    std::string plan;  // the --plans name, or "inline"
    double alpha = 1.0;
    std::vector<std::string> steps;
};

struct Server::Impl {
    Impl(const model::Model& m, const tokenizer::Tokenizer& t, const ServerOptions& o) : model(m), tok(t), options(o) {}

    void load_plans();
    void routes();
    void playground_routes();  // playground.cpp
    void completion(const httplib::Request& req, httplib::Response& res, bool chat);
    std::vector<int32_t> prompt_tokens(const ApiRequest& r) const;
    std::optional<steer::Steering> steering_of(const ApiRequest& r, AppliedSteering& applied) const;
    json response_json(const ApiRequest& r, const std::string& id, const Job& job, size_t n_prompt,
                       const std::optional<AppliedSteering>& applied) const;
    json logprobs_json(const ApiRequest& r, const std::vector<Job::Piece>& pieces) const;

    const model::Model& model;
    const tokenizer::Tokenizer& tok;
    ServerOptions options;
    std::map<std::string, steer::Plan> plans;
    PlaygroundData playground;  // --dims and --stats
    std::optional<ChatFormatter> chat;
    std::string chat_error;
    std::unique_ptr<Engine> engine;
    httplib::Server http;
    int port = 0;
    std::atomic<bool> shutting_down{false};
    std::atomic<bool> listen_done{false};
    std::atomic<uint64_t> next_id{1};
    int64_t created = unix_time();
};

}  // namespace critdim::server
