#include "server/serve_test_util.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "critdim/base.hpp"
#include "test_util.hpp"

namespace critdim::server::test {

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

json plan_json(const std::string& op, const std::vector<float>& values) {
    json dims = json::array();
    for (size_t i = 0; i < values.size(); ++i) dims.push_back(i * 3);
    return {{"format", "critdim-steering-plan"},
            {"version", 1},
            {"interventions", json::array({{{"op", op}, {"layers", "all"}, {"dims", dims}, {"values", values}}})}};
}

}  // namespace

const std::string& tiny_model() {
    static const std::string path = [] {
        const std::string p = critdim::test::temp_dir("serve-model") + "/tiny-q8_0.gguf";
        const auto r = critdim::test::run_critdim(
            {"synth", "--arch", "llama", "--config", "tiny", "--type", "q8_0", "--seed", "3", "--out", p});
        if (r.exit_code != 0) throw std::runtime_error("critdim synth failed: " + r.err);
        return p;
    }();
    return path;
}

json up_plan() { return plan_json("add", {6, -6, 6, -6, 6, -6, 6, -6, 6, -6, 6, -6}); }

const std::string& plans_dir() {
    static const std::string dir = [] {
        const std::string d = critdim::test::temp_dir("serve-plans");
        write_file_atomic(d + "/up.json", up_plan().dump(2));
        write_file_atomic(d + "/flip.json", plan_json("scale", std::vector<float>(20, -1.0f)).dump(2));
        json late = up_plan();  // steers the generated tokens only
        late["interventions"][0]["positions"] = "generated";
        write_file_atomic(d + "/late.json", late.dump(2));
        return d;
    }();
    return dir;
}

ServerProcess::ServerProcess(const std::string& model, const std::vector<std::string>& args) {
    const std::string dir = critdim::test::temp_dir("serve");
    err_path_ = dir + "/stderr";
    std::vector<std::string> all = {"serve", model, "--port", "0"};
    all.insert(all.end(), args.begin(), args.end());
    pid_ = critdim::test::spawn_critdim(all, dir + "/stdout", err_path_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        const std::string err = slurp(err_path_);
        const size_t at = err.find(" on http://");
        const size_t colon = at == std::string::npos ? at : err.find(':', at + 11);
        if (colon != std::string::npos && err.find(' ', colon) != std::string::npos) {
            port_ = std::stoi(err.substr(colon + 1));
            return;
        }
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("critdim serve exited before listening: " + err);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("critdim serve did not start within 60 s: " + slurp(err_path_));
}

ServerProcess::~ServerProcess() {
    if (pid_ > 0) stop();
}

int ServerProcess::stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

httplib::Client ServerProcess::client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(300, 0);
    c.set_connection_timeout(10, 0);
    return c;
}

std::string ServerProcess::log() const { return slurp(err_path_); }

long ServerProcess::rss_kib() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

namespace {
Reply reply_of(const httplib::Result& res) {
    Reply r;
    if (!res) {
        r.status = -1;
        r.raw = "request failed: " + httplib::to_string(res.error());
        return r;
    }
    r.status = res->status;
    r.raw = res->body;
    r.body = json::parse(res->body, nullptr, false);
    if (r.body.is_discarded()) r.body = nullptr;
    return r;
}
}  // namespace

Reply post_raw(const ServerProcess& s, const std::string& path, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers) {
    httplib::Client c = s.client();
    httplib::Headers h;
    for (const auto& [k, v] : headers) h.emplace(k, v);
    return reply_of(c.Post(path.c_str(), h, body, "application/json"));
}

Reply post(const ServerProcess& s, const std::string& path, const json& body,
           const std::vector<std::pair<std::string, std::string>>& headers) {
    return post_raw(s, path, body.dump(), headers);
}

Reply get(const ServerProcess& s, const std::string& path) { return reply_of(s.client().Get(path.c_str())); }

std::string stream_text(const std::string& sse, bool chat, std::vector<json>* events, bool* done) {
    std::string text;
    if (done) *done = false;
    std::istringstream in(sse);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("data: ", 0) != 0) continue;
        const std::string data = line.substr(6);
        if (data == "[DONE]") {
            if (done) *done = true;
            continue;
        }
        json e = json::parse(data);
        if (events) events->push_back(e);
        if (!e.contains("choices")) continue;
        const json& c = e["choices"][0];
        if (chat) {
            if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
        } else {
            text += c["text"].get<std::string>();
        }
    }
    return text;
}

std::string generate_text(const std::string& model, const std::vector<std::string>& args) {
    std::vector<std::string> all = {"generate", model, "--json", "-t", "1"};
    all.insert(all.end(), args.begin(), args.end());
    const auto r = critdim::test::run_critdim(all);
    if (r.exit_code != 0) throw std::runtime_error("critdim generate failed: " + r.err);
    return json::parse(r.out)["text"].get<std::string>();
}

json wait_health(const ServerProcess& s, const std::function<bool(const json&)>& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
        const Reply r = get(s, "/health");
        last = r.body;
        if (r.status == 200 && pred(r.body)) return r.body;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the server's /health never reached the expected state; last: " << last.dump();
    return last;
}

}  // namespace critdim::server::test
