// Every refusal of critdim serve, with its status code and message: authentication (401),
// body size (413), malformed JSON and wrong field types (400), token and context limits
// (400 naming the limit), plans (400), unknown endpoints and models (404), a full queue (503);
// a client that leaves mid-stream frees its slot; SIGTERM lets running requests finish.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "critdim/base.hpp"
#include "server/serve_test_util.hpp"
#include "test_util.hpp"

namespace critdim::server::test {
namespace {

ServerProcess& limits_server() {
    static ServerProcess s(tiny_model(), {"--plans", plans_dir(), "--ctx", "64", "--max-tokens", "40", "--max-body",
                                          "4", "--api-key", "sesame", "-t", "1"});
    return s;
}

const std::vector<std::pair<std::string, std::string>> kAuth = {{"Authorization", "Bearer sesame"}};

void expect_error(const Reply& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.raw;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], status);
    const std::string message = r.body["error"]["message"].get<std::string>();
    EXPECT_NE(message.find(needle), std::string::npos) << "message: " << message << "\nexpected to contain: " << needle;
}

json ok_body() { return {{"prompt", "Once"}, {"max_tokens", 4}, {"temperature", 0}}; }

TEST(ServeErrors, ApiKey) {
    ServerProcess& s = limits_server();
    expect_error(post(s, "/v1/completions", ok_body()), 401, "missing API key");
    expect_error(post(s, "/v1/completions", ok_body(), {{"Authorization", "Bearer wrong"}}), 401, "invalid API key");
    expect_error(get(s, "/v1/models"), 401, "missing API key");
    EXPECT_EQ(post(s, "/v1/completions", ok_body(), kAuth).status, 200);
    EXPECT_EQ(get(s, "/health").status, 200);  // health checks need no key
}

TEST(ServeErrors, BodyTooLarge) {
    json b = ok_body();
    b["prompt"] = std::string(5000, 'a');  // --max-body 4 KiB
    expect_error(post(limits_server(), "/v1/completions", b, kAuth), 413, "request body too large");
}

TEST(ServeErrors, MalformedJsonAndWrongTypes) {
    ServerProcess& s = limits_server();
    const std::string path = "/v1/completions";
    expect_error(post_raw(s, path, "{\"prompt\": \"x\",", kAuth), 400, "request body is not valid JSON");
    expect_error(post_raw(s, path, "[1, 2]", kAuth), 400, "expected a JSON object, got an array");
    struct Case {
        json patch;
        const char* needle;
    };
    const Case cases[] = {
        {{{"max_tokens", "ten"}}, "field 'max_tokens': expected an integer, got a string"},
        {{{"max_tokens", -1}}, "field 'max_tokens': -1 is out of range"},
        {{{"temperature", "hot"}}, "field 'temperature': expected a number, got a string"},
        {{{"top_p", 1.5}}, "field 'top_p': 1.5 is out of range"},
        {{{"seed", 1.5}}, "field 'seed': expected an integer, got a number"},
        {{{"stop", 3}}, "field 'stop': expected a string or an array of strings"},
        {{{"stop", {"a", 1}}}, "field 'stop[1]': expected a string, got an integer"},
        {{{"stream", "yes"}}, "field 'stream': expected a boolean, got a string"},
        {{{"n", 2}}, "field 'n': only n = 1 is supported"},
        {{{"logprobs", true}}, "field 'logprobs': expected an integer, got a boolean"},
        {{{"prompt", 5}}, "field 'prompt': expected a string"},
        {{{"prompt", {1, 100000}}}, "token id 100000 is out of range (vocabulary has 512 tokens)"},
        {{{"steering", 5}}, "field 'steering': expected a plan name"},
        {{{"steering", {{"plan", "up"}, {"alpha", "big"}}}}, "field 'steering.alpha': expected a number"},
        {{{"steering", {{"plan", "up"}, {"strength", 1}}}}, "field 'steering.strength': unknown"},
    };
    for (const Case& c : cases) {
        json b = ok_body();
        b.update(c.patch);
        SCOPED_TRACE(c.patch.dump());
        expect_error(post(s, path, b, kAuth), 400, c.needle);
    }
    json no_prompt = ok_body();
    no_prompt.erase("prompt");
    expect_error(post(s, path, no_prompt, kAuth), 400, "field 'prompt' is required");
    expect_error(post(s, "/v1/chat/completions", ok_body(), kAuth), 400, "field 'messages' is required");
    expect_error(post(s, "/v1/chat/completions", {{"messages", {{{"content", "x"}}}}}, kAuth), 400,
                 "field 'messages[0].role' is required");
    // No template in the tiny model and none named: chat is refused, saying how to fix it.
    expect_error(post(s, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}}}, kAuth), 400,
                 "--chat-template");
}

TEST(ServeErrors, TokenAndContextLimitsNameTheLimit) {
    ServerProcess& s = limits_server();
    json b = ok_body();
    b["max_tokens"] = 41;
    expect_error(post(s, "/v1/completions", b, kAuth), 400,
                 "field 'max_tokens': 41 exceeds the server's limit of 40 tokens per request (--max-tokens)");
    b["prompt"] = std::vector<int>(30, 7);
    b["max_tokens"] = 40;
    expect_error(post(s, "/v1/completions", b, kAuth), 400,
                 "the prompt (30 tokens) + max_tokens (40) exceed the context of 64 tokens per sequence (--ctx)");
    b["prompt"] = std::vector<int>(64, 7);
    b["max_tokens"] = 0;
    expect_error(post(s, "/v1/completions", b, kAuth), 400,
                 "the prompt has 64 tokens; the context is 64 tokens per sequence (--ctx)");
    b["prompt"] = std::vector<int>(30, 7);
    b["max_tokens"] = 34;
    EXPECT_EQ(post(s, "/v1/completions", b, kAuth).status, 200);
}

TEST(ServeErrors, Plans) {
    ServerProcess& s = limits_server();
    json b = ok_body();
    b["steering"] = "nonesuch";
    expect_error(post(s, "/v1/completions", b, kAuth), 400,
                 "no plan named 'nonesuch' (loaded with --plans: flip, late, up)");
    json wrong = up_plan();
    wrong["model"] = {{"n_embd", 128}};
    b["steering"] = wrong;
    expect_error(post(s, "/v1/completions", b, kAuth), 400, "the plan is for n_embd 128, the model has 64");
    json bad_dim = up_plan();
    bad_dim["interventions"][0]["dims"][0] = 999;
    b["steering"] = bad_dim;
    expect_error(post(s, "/v1/completions", b, kAuth), 400, "999 is out of range (model has n_embd 64)");
    json bad_op = up_plan();
    bad_op["interventions"][0]["op"] = "multiply";
    b["steering"] = {{"plan", bad_op}};
    expect_error(post(s, "/v1/completions", b, kAuth), 400, "unknown operation 'multiply'");
    json file_ref = up_plan();
    file_ref["interventions"][0]["values"] = {{"npy", "/etc/passwd"}};
    b["steering"] = file_ref;
    expect_error(post(s, "/v1/completions", b, kAuth), 400, "an inline plan cannot read files on the server");
}

// Start-up refuses what cannot serve: a plan that does not fit the model, an unknown template.
TEST(ServeErrors, StartupRefusesBadPlansAndTemplates) {
    const std::string dir = critdim::test::temp_dir("serve-bad-plans");
    json wide = up_plan();
    wide["interventions"][0]["dims"][0] = 640;
    write_file_atomic(dir + "/wide.json", wide.dump());
    auto r = critdim::test::run_critdim({"serve", tiny_model(), "--port", "0", "--plans", dir});
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_NE(r.err.find("wide.json: interventions[0].dims: 640 is out of range (model has n_embd 64)"),
              std::string::npos)
        << r.err;
    r = critdim::test::run_critdim({"serve", tiny_model(), "--port", "0", "--chat-template", "nonesuch"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--chat-template: unknown family 'nonesuch'"), std::string::npos) << r.err;
}

TEST(ServeErrors, UnknownEndpointAndModel) {
    ServerProcess& s = limits_server();
    expect_error(post(s, "/v1/embeddings", ok_body(), kAuth), 404, "no endpoint POST /v1/embeddings");
    json b = ok_body();
    b["model"] = "gpt-4";
    expect_error(post(s, "/v1/completions", b, kAuth), 404, "model 'gpt-4' is not served here");
}

// A raw socket that sends a streaming request and returns once the first event arrived
// (mid-stream); closing it is the client leaving.
int open_stream(int port, const std::string& body) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) throw std::runtime_error("connect failed");
    const std::string req =
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
        throw std::runtime_error("send failed");
    char buf[512];
    std::string got;
    while (got.find("data: {") == std::string::npos) {
        const ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) throw std::runtime_error("the stream ended before its first event: " + got);
        got.append(buf, static_cast<size_t>(n));
    }
    return fd;
}

TEST(ServeErrors, ClientLeavingMidStreamFreesItsSlot) {
    ServerProcess s(tiny_model(), {"--parallel", "1", "--ctx", "65536", "--max-tokens", "60000", "-t", "1"});
    const json b = {{"prompt", "Once"}, {"max_tokens", 60000}, {"ignore_eos", true}, {"stream", true}};
    close(open_stream(s.port(), b.dump()));
    const json h = wait_health(s, [](const json& j) { return j["slots_busy"] == 0; });
    EXPECT_EQ(h["requests_cancelled"], 1);
    EXPECT_LT(h["tokens_generated"].get<int64_t>(), 60000);
    // The slot serves the next request.
    const Reply r = post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 3}});
    EXPECT_EQ(r.status, 200) << r.raw;
}

TEST(ServeErrors, FullQueueIs503) {
    ServerProcess s(tiny_model(),
                    {"--parallel", "1", "--queue", "1", "--ctx", "65536", "--max-tokens", "60000", "-t", "1"});
    const json slow = {{"prompt", "Once"}, {"max_tokens", 60000}, {"ignore_eos", true}, {"stream", true}};
    // The first request takes the slot; the second waits in the queue; the third is refused.
    const int first = open_stream(s.port(), slow.dump());
    wait_health(s, [](const json& j) { return j["slots_busy"] == 1; });
    std::thread second([&] { post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 2}}); });
    wait_health(s, [](const json& j) { return j["queued"] == 1; });
    expect_error(post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 2}}), 503, "the server is busy");
    close(first);  // leaving frees the slot for the queued request
    second.join();
    const json h = wait_health(s, [](const json& j) { return j["slots_busy"] == 0 && j["queued"] == 0; });
    EXPECT_EQ(h["requests_done"], 1);
}

TEST(ServeErrors, SigtermFinishesRunningRequestsThenExits) {
    ServerProcess s(tiny_model(), {"--parallel", "2", "--ctx", "4096", "--max-tokens", "4000", "-t", "1"});
    Reply r;
    std::thread client([&] {
        r = post(s, "/v1/completions",
                 {{"prompt", "Once"}, {"max_tokens", 3000}, {"ignore_eos", true}, {"temperature", 0}});
    });
    wait_health(s, [](const json& j) { return j["slots_busy"] == 1; });
    kill(s.pid(), SIGTERM);
    client.join();
    EXPECT_EQ(r.status, 200) << r.raw;
    if (r.status == 200) {
        EXPECT_EQ(r.body["usage"]["completion_tokens"], 3000);
        EXPECT_EQ(r.body["choices"][0]["finish_reason"], "length");
    }
    EXPECT_EQ(s.stop(), 0) << s.log();
    EXPECT_NE(s.log().find("SIGTERM: finishing running requests"), std::string::npos) << s.log();
}

}  // namespace
}  // namespace critdim::server::test
