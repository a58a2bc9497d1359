// Internal: the OpenAI request bodies critdim serve reads, checked field by field, and the
// HTTP error a bad one becomes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "critdim/tokenizer.hpp"

namespace critdim::server {

// A request the server refuses: status code, message, and the field at fault (if any).
struct HttpError {
    int status = 400;
    std::string message;
    std::string param;
};
[[noreturn]] void http_fail(int status, std::string message, std::string param = "");

struct SteeringRequest {
    std::string name;                    // a plan loaded with --plans; empty for an inline plan
    std::optional<nlohmann::json> plan;  // the inline plan object
    std::optional<double> alpha;         // replaces the plan's alpha
};

struct ApiRequest {
    bool chat = false;
    std::string prompt;               // /v1/completions, as text
    std::vector<int64_t> prompt_ids;  // /v1/completions, as token ids
    bool prompt_is_ids = false;
    std::vector<tokenizer::ChatMessage> messages;  // /v1/chat/completions
    std::string model;
    std::optional<int64_t> max_tokens;
    double temperature = 1.0, top_p = 1.0;
    int64_t top_k = 0;
    std::optional<uint64_t> seed;
    std::vector<std::string> stop;
    bool stream = false;
    int top_logprobs = -1;  // -1: none
    bool ignore_eos = false;
    std::optional<SteeringRequest> steering;
};

// The body as a JSON object; HttpError 400 when it is not one.
nlohmann::json parse_body_object(const std::string& body);

// Field readers: HttpError 400 naming `field` when the value has the wrong type or range.
int64_t get_int(const nlohmann::json& v, const std::string& field, int64_t lo, int64_t hi);
double get_number(const nlohmann::json& v, const std::string& field, double lo, double hi);
bool get_bool(const nlohmann::json& v, const std::string& field);
const std::string& get_string(const nlohmann::json& v, const std::string& field);
// The `steering` field: a plan name, a plan object, or {"plan": ..., "alpha": X}.
SteeringRequest parse_steering(const nlohmann::json& v);

// Parses a request body; HttpError 400 names the field and what it should be. Fields the
// server does not use are ignored, as OpenAI's own clients send many.
ApiRequest parse_request(const std::string& body, bool chat);

}  // namespace critdim::server
