// Shared by the server tests: a tiny model and plans made once, a real `critdim serve` process
// on a free loopback port, HTTP helpers, and `critdim generate` to compare against.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace critdim::server::test {

using json = nlohmann::json;

// A tiny random-weight llama (critdim synth --config tiny, Q8_0), made once per test run.
const std::string& tiny_model();
// A folder with plans for the tiny model: up.json (add), flip.json (scale by -1) and
// late.json (up.json on generated positions only).
const std::string& plans_dir();
// The inline form of plans_dir()/up.json.
json up_plan();

class ServerProcess {
public:
    // Starts `critdim serve MODEL --port 0 ARGS...` and waits until it listens.
    ServerProcess(const std::string& model, const std::vector<std::string>& args);
    ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    int port() const { return port_; }
    int pid() const { return pid_; }
    httplib::Client client() const;
    // SIGTERM, then waits; returns the exit code (128 + signal when killed).
    int stop();
    std::string log() const;  // the server's stderr
    long rss_kib() const;     // VmRSS of the server process

private:
    int pid_ = -1;
    int port_ = 0;
    std::string err_path_;
};

struct Reply {
    int status = 0;
    json body;        // parsed JSON (null when the body is not JSON)
    std::string raw;  // the body as sent
};
Reply post(const ServerProcess& s, const std::string& path, const json& body,
           const std::vector<std::pair<std::string, std::string>>& headers = {});
Reply post_raw(const ServerProcess& s, const std::string& path, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
Reply get(const ServerProcess& s, const std::string& path);

// The text of a streamed response: the concatenated text (completions) or delta contents
// (chat) of its events; `events` receives every parsed event, `done` whether [DONE] came.
std::string stream_text(const std::string& sse, bool chat, std::vector<json>* events = nullptr, bool* done = nullptr);

// `critdim generate MODEL ARGS... --json`: the generated text.
std::string generate_text(const std::string& model, const std::vector<std::string>& args);

// The server's /health JSON, polled until pred(health) or about 60 s (then fails the test).
json wait_health(const ServerProcess& s, const std::function<bool(const json&)>& pred);

}  // namespace critdim::server::test
