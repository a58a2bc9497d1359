// OpenAI request bodies, checked field by field: a wrong type or value is a 400 that names
// the field.
#include "server/request.hpp"

#include <algorithm>
#include <cmath>

namespace critdim::server {

void http_fail(int status, std::string message, std::string param) {
    throw HttpError{status, std::move(message), std::move(param)};
}

using json = nlohmann::json;

namespace {

const char* type_name(const json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::string:
            return "a string";
        case json::value_t::array:
            return "an array";
        case json::value_t::object:
            return "an object";
        case json::value_t::number_float:
            return "a number";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "an integer";
        default:
            return "an unsupported value";
    }
}

[[noreturn]] void wrong(const std::string& field, const std::string& expected, const json& got) {
    http_fail(400, "field '" + field + "': expected " + expected + ", got " + type_name(got), field);
}

bool is_int(const json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

}  // namespace

int64_t get_int(const json& v, const std::string& field, int64_t lo, int64_t hi) {
    if (!is_int(v)) wrong(field, "an integer", v);
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
        http_fail(400,
                  "field '" + field + "': " + v.dump() + " is out of range [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]",
                  field);
    const auto x = v.get<int64_t>();
    if (x < lo || x > hi)
        http_fail(400,
                  "field '" + field + "': " + std::to_string(x) + " is out of range [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]",
                  field);
    return x;
}

double get_number(const json& v, const std::string& field, double lo, double hi) {
    if (!v.is_number()) wrong(field, "a number", v);
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi))
        http_fail(400,
                  "field '" + field + "': " + v.dump() + " is out of range [" + json(lo).dump() + ", " +
                      json(hi).dump() + "]",
                  field);
    return x;
}

bool get_bool(const json& v, const std::string& field) {
    if (!v.is_boolean()) wrong(field, "a boolean", v);
    return v.get<bool>();
}

const std::string& get_string(const json& v, const std::string& field) {
    if (!v.is_string()) wrong(field, "a string", v);
    return v.get_ref<const std::string&>();
}

namespace {

// Message content: a string, or a list of {"type": "text", "text": ...} parts.
std::string message_content(const json& v, const std::string& field) {
    if (v.is_null()) return {};
    if (v.is_string()) return v.get<std::string>();
    if (!v.is_array()) wrong(field, "a string or an array of text parts", v);
    std::string text;
    for (size_t i = 0; i < v.size(); ++i) {
        const std::string f = field + "[" + std::to_string(i) + "]";
        const json& part = v[i];
        if (!part.is_object()) wrong(f, "an object", part);
        if (!part.contains("type") || get_string(part["type"], f + ".type") != "text")
            http_fail(400, "field '" + f + ".type': only \"text\" parts are supported", f + ".type");
        if (!part.contains("text")) http_fail(400, "field '" + f + ".text' is required", f + ".text");
        text += get_string(part["text"], f + ".text");
    }
    return text;
}

// A plan that arrives over the network may not name files on the server.
void refuse_file_values(const json& plan) {
    if (!plan.contains("interventions") || !plan["interventions"].is_array()) return;
    const json& list = plan["interventions"];
    for (size_t i = 0; i < list.size(); ++i) {
        if (!list[i].is_object()) continue;
        for (const char* key : {"values", "min", "max"}) {
            if (!list[i].contains(key)) continue;
            const json& v = list[i][key];
            if (v.is_object() && (v.contains("npy") || v.contains("gguf")))
                http_fail(400,
                          "field 'steering.plan.interventions[" + std::to_string(i) + "]." + key +
                              "': an inline plan cannot read files on the server; give the values inline or "
                              "preload the plan with --plans",
                          "steering");
        }
    }
}

}  // namespace

SteeringRequest parse_steering(const json& v) {
    SteeringRequest s;
    if (v.is_string()) {
        s.name = v.get<std::string>();
        if (s.name.empty()) http_fail(400, "field 'steering': the plan name is empty", "steering");
        return s;
    }
    if (!v.is_object()) wrong("steering", "a plan name, a plan object or {\"plan\": ..., \"alpha\": X}", v);
    if (v.contains("format")) {  // the plan itself
        s.plan = v;
    } else {
        for (const auto& [key, value] : v.items())
            if (key != "plan" && key != "alpha")
                http_fail(400, "field 'steering." + key + "': unknown (expected \"plan\" and optional \"alpha\")",
                          "steering");
        if (!v.contains("plan")) http_fail(400, "field 'steering.plan' is required", "steering");
        const json& p = v["plan"];
        if (p.is_string()) {
            s.name = p.get<std::string>();
        } else if (p.is_object()) {
            s.plan = p;
        } else {
            wrong("steering.plan", "a plan name or a plan object", p);
        }
        if (v.contains("alpha")) s.alpha = get_number(v["alpha"], "steering.alpha", -1e30, 1e30);
    }
    if (s.plan) refuse_file_values(*s.plan);
    return s;
}

nlohmann::json parse_body_object(const std::string& body) {
    json j;
    try {
        j = json::parse(body);
    } catch (const json::exception& e) {
        http_fail(400, std::string("request body is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) http_fail(400, std::string("request body: expected a JSON object, got ") + type_name(j));
    return j;
}

ApiRequest parse_request(const std::string& body, bool chat) {
    const json j = parse_body_object(body);
    ApiRequest r;
    r.chat = chat;
    if (chat) {
        if (!j.contains("messages")) http_fail(400, "field 'messages' is required", "messages");
        const json& m = j["messages"];
        if (!m.is_array()) wrong("messages", "an array of messages", m);
        if (m.empty()) http_fail(400, "field 'messages': at least one message is required", "messages");
        for (size_t i = 0; i < m.size(); ++i) {
            const std::string f = "messages[" + std::to_string(i) + "]";
            if (!m[i].is_object()) wrong(f, "an object", m[i]);
            if (!m[i].contains("role")) http_fail(400, "field '" + f + ".role' is required", f + ".role");
            tokenizer::ChatMessage msg;
            msg.role = get_string(m[i]["role"], f + ".role");
            if (m[i].contains("content")) msg.content = message_content(m[i]["content"], f + ".content");
            r.messages.push_back(std::move(msg));
        }
    } else {
        if (!j.contains("prompt")) http_fail(400, "field 'prompt' is required", "prompt");
        const json& p = j["prompt"];
        if (p.is_string()) {
            r.prompt = p.get<std::string>();
        } else if (p.is_array() && !p.empty() && std::all_of(p.begin(), p.end(), is_int)) {
            r.prompt_is_ids = true;
            for (const json& id : p) r.prompt_ids.push_back(get_int(id, "prompt", 0, INT32_MAX));
        } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
            r.prompt = p[0].get<std::string>();
        } else {
            wrong("prompt", "a string, an array of one string, or an array of token ids", p);
        }
    }
    if (j.contains("model") && !j["model"].is_null()) r.model = get_string(j["model"], "model");
    for (const char* key : {"max_tokens", "max_completion_tokens"})
        if (j.contains(key) && !j[key].is_null()) r.max_tokens = get_int(j[key], key, 0, INT32_MAX);
    if (j.contains("temperature") && !j["temperature"].is_null())
        r.temperature = get_number(j["temperature"], "temperature", 0.0, 100.0);
    if (j.contains("top_p") && !j["top_p"].is_null()) r.top_p = get_number(j["top_p"], "top_p", 0.0, 1.0);
    if (j.contains("top_k") && !j["top_k"].is_null()) r.top_k = get_int(j["top_k"], "top_k", 0, INT32_MAX);
    if (j.contains("seed") && !j["seed"].is_null()) {
        const json& s = j["seed"];
        if (!is_int(s)) wrong("seed", "an integer", s);
        r.seed = s.is_number_unsigned() ? s.get<uint64_t>() : static_cast<uint64_t>(s.get<int64_t>());
    }
    if (j.contains("stop") && !j["stop"].is_null()) {
        const json& s = j["stop"];
        if (s.is_string()) {
            r.stop.push_back(s.get<std::string>());
        } else if (s.is_array()) {
            if (s.size() > 4) http_fail(400, "field 'stop': at most 4 stop strings", "stop");
            for (size_t i = 0; i < s.size(); ++i) r.stop.push_back(get_string(s[i], "stop[" + std::to_string(i) + "]"));
        } else {
            wrong("stop", "a string or an array of strings", s);
        }
        for (const std::string& s2 : r.stop)
            if (s2.empty()) http_fail(400, "field 'stop': a stop string is empty", "stop");
    }
    if (j.contains("stream") && !j["stream"].is_null()) r.stream = get_bool(j["stream"], "stream");
    if (j.contains("n") && !j["n"].is_null() && get_int(j["n"], "n", 1, INT32_MAX) != 1)
        http_fail(400, "field 'n': only n = 1 is supported", "n");
    if (chat) {
        const bool want = j.contains("logprobs") && !j["logprobs"].is_null() && get_bool(j["logprobs"], "logprobs");
        int top = 0;
        if (j.contains("top_logprobs") && !j["top_logprobs"].is_null()) {
            top = static_cast<int>(get_int(j["top_logprobs"], "top_logprobs", 0, 20));
            if (!want) http_fail(400, "field 'top_logprobs' needs \"logprobs\": true", "top_logprobs");
        }
        if (want) r.top_logprobs = top;
    } else if (j.contains("logprobs") && !j["logprobs"].is_null()) {
        r.top_logprobs = static_cast<int>(get_int(j["logprobs"], "logprobs", 0, 20));
    }
    if (j.contains("echo") && !j["echo"].is_null() && get_bool(j["echo"], "echo"))
        http_fail(400, "field 'echo': echoing the prompt is not supported", "echo");
    if (j.contains("ignore_eos") && !j["ignore_eos"].is_null()) r.ignore_eos = get_bool(j["ignore_eos"], "ignore_eos");
    if (j.contains("steering") && !j["steering"].is_null()) r.steering = parse_steering(j["steering"]);
    return r;
}

}  // namespace critdim::server
