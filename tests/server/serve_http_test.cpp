// critdim serve as a client sees it: a real server process on a free loopback port, HTTP via
// httplib. Same text as `critdim generate` (plain, sampled, chat, steered), requests with
// different plans decoded together, streaming, stop strings, log-probabilities, endpoints.
#include <gtest/gtest.h>

#include <thread>

#include "server/serve_test_util.hpp"

namespace critdim::server::test {
namespace {

const char* kPrompt = "Once upon a time";

ServerProcess& shared_server() {
    static ServerProcess s(tiny_model(), {"--plans", plans_dir(), "--parallel", "4", "--ctx", "256", "-t", "2"});
    return s;
}

json completion(const std::string& prompt, int max_tokens, const json& extra = json::object()) {
    json b = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}};
    b.update(extra);
    return b;
}

std::string text_of(const Reply& r) {
    EXPECT_EQ(r.status, 200) << r.raw;
    if (r.status != 200) return {};
    const json& c = r.body["choices"][0];
    return c.contains("message") ? c["message"]["content"].get<std::string>() : c["text"].get<std::string>();
}

TEST(ServeHttp, GreedyCompletionEqualsGenerate) {
    const Reply r = post(shared_server(), "/v1/completions", completion(kPrompt, 40));
    const std::string expect = generate_text(tiny_model(), {"--prompt", kPrompt, "-n", "40", "--ignore-eos"});
    ASSERT_FALSE(expect.empty());
    EXPECT_EQ(text_of(r), expect);
    EXPECT_EQ(r.body["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(r.body["usage"]["completion_tokens"], 40);
    EXPECT_EQ(r.body["object"], "text_completion");
    EXPECT_TRUE(r.body["steering"].is_null());
}

TEST(ServeHttp, SampledCompletionEqualsGenerate) {
    const json extra = {{"temperature", 0.9}, {"top_p", 0.95}, {"seed", 1234}};
    const Reply r = post(shared_server(), "/v1/completions", completion("The little dog", 32, extra));
    const std::string expect = generate_text(tiny_model(), {"--prompt", "The little dog", "-n", "32", "--ignore-eos",
                                                            "--temp", "0.9", "--top-p", "0.95", "--seed", "1234"});
    EXPECT_EQ(text_of(r), expect);
    // Another seed gives another text; the same seed the same again.
    json other = extra;
    other["seed"] = 99;
    EXPECT_NE(text_of(post(shared_server(), "/v1/completions", completion("The little dog", 32, other))), expect);
    EXPECT_EQ(text_of(post(shared_server(), "/v1/completions", completion("The little dog", 32, extra))), expect);
}

TEST(ServeHttp, EndOfGenerationStopsAsGenerateDoes) {
    // Without ignore_eos a sampled random model emits its end token sooner or later.
    for (int seed : {1, 2, 3}) {
        json b = {{"prompt", kPrompt}, {"max_tokens", 200}, {"temperature", 1.5}, {"seed", seed}};
        const Reply r = post(shared_server(), "/v1/completions", b);
        const std::string expect = generate_text(
            tiny_model(), {"--prompt", kPrompt, "-n", "200", "--temp", "1.5", "--seed", std::to_string(seed)});
        EXPECT_EQ(text_of(r), expect) << "seed " << seed;
    }
}

TEST(ServeHttp, ChatEqualsGenerateChat) {
    ServerProcess s(tiny_model(), {"--chat-template", "chatml", "--parallel", "2", "--ctx", "128", "-t", "1"});
    const json b = {{"messages", json::array({{{"role", "system"}, {"content", "Be brief."}},
                                              {{"role", "user"}, {"content", "Tell me a story"}}})},
                    {"max_tokens", 24},
                    {"temperature", 0},
                    {"ignore_eos", true}};
    const Reply r = post(s, "/v1/chat/completions", b);
    const std::string expect =
        generate_text(tiny_model(), {"--chat", "--chat-template", "chatml", "--system", "Be brief.", "--prompt",
                                     "Tell me a story", "-n", "24", "--ignore-eos"});
    EXPECT_EQ(text_of(r), expect);
    EXPECT_EQ(r.body["object"], "chat.completion");
    EXPECT_EQ(r.body["choices"][0]["message"]["role"], "assistant");
}

TEST(ServeHttp, SteeredDiffersAndEqualsGenerateSteer) {
    ServerProcess& s = shared_server();
    const std::string plain = text_of(post(s, "/v1/completions", completion(kPrompt, 32)));
    const std::string up = plans_dir() + "/up.json";
    const std::string expect_up =
        generate_text(tiny_model(), {"--prompt", kPrompt, "-n", "32", "--ignore-eos", "--steer", up});
    const std::string expect_half =
        generate_text(tiny_model(), {"--prompt", kPrompt, "-n", "32", "--ignore-eos", "--steer", up, "--alpha", "0.5"});
    ASSERT_NE(expect_up, plain) << "the test plan must change the text";
    ASSERT_NE(expect_half, expect_up);

    const Reply by_name = post(s, "/v1/completions", completion(kPrompt, 32, {{"steering", "up"}}));
    EXPECT_EQ(text_of(by_name), expect_up);
    EXPECT_EQ(by_name.body["steering"]["plan"], "up");
    EXPECT_EQ(by_name.body["steering"]["alpha"], 1.0);
    EXPECT_EQ(by_name.body["steering"]["steps"].size(), 2u);  // resid_post.0 and .1 of the tiny model

    const Reply inline_half =
        post(s, "/v1/completions", completion(kPrompt, 32, {{"steering", {{"plan", up_plan()}, {"alpha", 0.5}}}}));
    EXPECT_EQ(text_of(inline_half), expect_half);
    EXPECT_EQ(inline_half.body["steering"]["plan"], "inline");
    EXPECT_EQ(inline_half.body["steering"]["alpha"], 0.5);

    const Reply named_half =
        post(s, "/v1/completions", completion(kPrompt, 32, {{"steering", {{"plan", "up"}, {"alpha", 0.5}}}}));
    EXPECT_EQ(text_of(named_half), expect_half);
    const Reply inline_bare = post(s, "/v1/completions", completion(kPrompt, 32, {{"steering", up_plan()}}));
    EXPECT_EQ(text_of(inline_bare), expect_up);
    // The unsteered request after them is unchanged: plans stay with their requests.
    EXPECT_EQ(text_of(post(s, "/v1/completions", completion(kPrompt, 32))), plain);
}

// Requests with different plans (and none) at the same time: each gets its own, decoded in
// shared batches (the server has 4 slots; the forward-pass counter shows they overlapped).
TEST(ServeHttp, ConcurrentRequestsEachGetTheirOwnPlan) {
    ServerProcess s(tiny_model(), {"--plans", plans_dir(), "--parallel", "5", "--ctx", "256", "-t", "1"});
    const std::string up = plans_dir() + "/up.json", flip = plans_dir() + "/flip.json",
                      late = plans_dir() + "/late.json";
    const std::vector<std::pair<json, std::vector<std::string>>> cases = {
        {json(nullptr), {}},
        {json("up"), {"--steer", up}},
        {json("flip"), {"--steer", flip}},
        {json("late"), {"--steer", late}},
        {json{{"plan", "up"}, {"alpha", -0.7}}, {"--steer", up, "--alpha", "-0.7"}},
    };
    std::vector<std::string> expect;
    for (const auto& [steering, args] : cases) {
        std::vector<std::string> a = {"--prompt", kPrompt, "-n", "200", "--ignore-eos"};
        a.insert(a.end(), args.begin(), args.end());
        expect.push_back(generate_text(tiny_model(), a));
    }
    for (size_t i = 0; i < expect.size(); ++i)
        for (size_t j = i + 1; j < expect.size(); ++j) ASSERT_NE(expect[i], expect[j]) << i << " " << j;

    const json before = get(s, "/health").body;
    std::vector<std::string> got(cases.size());
    std::vector<std::thread> clients;
    for (size_t i = 0; i < cases.size(); ++i)
        clients.emplace_back([&, i] {
            json extra = json::object();
            if (!cases[i].first.is_null()) extra["steering"] = cases[i].first;
            got[i] = text_of(post(s, "/v1/completions", completion(kPrompt, 200, extra)));
        });
    for (auto& t : clients) t.join();
    for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(got[i], expect[i]) << "request " << i;
    const json after = get(s, "/health").body;
    const uint64_t passes = after["forward_passes"].get<uint64_t>() - before["forward_passes"].get<uint64_t>();
    std::fprintf(stderr, "%zu requests x 200 tokens in %llu forward passes\n", cases.size(),
                 static_cast<unsigned long long>(passes));
    EXPECT_LT(passes, cases.size() * 200u) << "the requests were never decoded together";
}

TEST(ServeHttp, StreamingReassemblesToTheSameText) {
    ServerProcess& s = shared_server();
    for (const json& steering : {json(nullptr), json("up")}) {
        json b = completion(kPrompt, 48, {{"temperature", 0.8}, {"seed", 5}});
        if (!steering.is_null()) b["steering"] = steering;
        const std::string whole = text_of(post(s, "/v1/completions", b));
        b["stream"] = true;
        const Reply r = post(s, "/v1/completions", b);
        ASSERT_EQ(r.status, 200) << r.raw;
        std::vector<json> events;
        bool done = false;
        EXPECT_EQ(stream_text(r.raw, false, &events, &done), whole);
        EXPECT_TRUE(done);
        ASSERT_FALSE(events.empty());
        EXPECT_GT(events.size(), 2u);
        EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "length");
        EXPECT_EQ(events.back()["usage"]["completion_tokens"], 48);
        if (!steering.is_null()) {
            EXPECT_EQ(events.back()["steering"]["plan"], "up");
        }
    }
}

TEST(ServeHttp, ChatStreamingReassembles) {
    ServerProcess s(tiny_model(), {"--chat-template", "chatml", "--ctx", "128", "-t", "1"});
    json b = {{"messages", json::array({{{"role", "user"}, {"content", "hello"}}})},
              {"max_tokens", 30},
              {"temperature", 0},
              {"ignore_eos", true}};
    const std::string whole = text_of(post(s, "/v1/chat/completions", b));
    b["stream"] = true;
    const Reply r = post(s, "/v1/chat/completions", b);
    std::vector<json> events;
    bool done = false;
    EXPECT_EQ(stream_text(r.raw, true, &events, &done), whole);
    EXPECT_TRUE(done);
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(events.front()["object"], "chat.completion.chunk");
    EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "length");
}

TEST(ServeHttp, StopStringsEndTheTextBeforeThem) {
    ServerProcess& s = shared_server();
    const std::string full = text_of(post(s, "/v1/completions", completion(kPrompt, 60)));
    ASSERT_GT(full.size(), 30u);
    // Two printable ASCII characters from the middle of the text (a random model also writes
    // stray bytes, which JSON shows as U+FFFD and a stop string cannot name).
    size_t from = 20;
    auto printable = [&](size_t i) { return full[i] > ' ' && full[i] < 0x7f; };
    while (from + 1 < full.size() && !(printable(from) && printable(from + 1))) ++from;
    ASSERT_LT(from + 1, full.size());
    const std::string stop = full.substr(from, 2);
    const std::string expect = full.substr(0, full.find(stop));
    for (bool stream : {false, true}) {
        const json b = completion(kPrompt, 60, {{"stop", json::array({"\x01never", stop})}, {"stream", stream}});
        const Reply r = post(s, "/v1/completions", b);
        ASSERT_EQ(r.status, 200) << r.raw;
        std::vector<json> events;
        const std::string text = stream ? stream_text(r.raw, false, &events) : text_of(r);
        EXPECT_EQ(text, expect) << "stream " << stream;
        const json& last = stream ? events.back() : r.body;
        EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
    }
}

TEST(ServeHttp, LogprobsForEveryToken) {
    ServerProcess& s = shared_server();
    const Reply r = post(s, "/v1/completions", completion(kPrompt, 12, {{"logprobs", 3}}));
    ASSERT_EQ(r.status, 200) << r.raw;
    const json& lp = r.body["choices"][0]["logprobs"];
    ASSERT_EQ(lp["token_logprobs"].size(), 12u);
    ASSERT_EQ(lp["top_logprobs"].size(), 12u);
    for (size_t i = 0; i < 12; ++i) {
        const double chosen = lp["token_logprobs"][i].get<double>();
        EXPECT_LE(chosen, 0.0);
        double best = -1e30;
        for (const auto& [tok, v] : lp["top_logprobs"][i].items()) best = std::max(best, v.get<double>());
        EXPECT_NEAR(chosen, best, 1e-6) << "greedy picks the most likely token, position " << i;
    }
    ServerProcess c(tiny_model(), {"--chat-template", "chatml", "--ctx", "128", "-t", "1"});
    const json b = {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
                    {"max_tokens", 5},
                    {"temperature", 0},
                    {"ignore_eos", true},
                    {"logprobs", true},
                    {"top_logprobs", 2}};
    const Reply rc = post(c, "/v1/chat/completions", b);
    ASSERT_EQ(rc.status, 200) << rc.raw;
    const json& content = rc.body["choices"][0]["logprobs"]["content"];
    ASSERT_EQ(content.size(), 5u);
    EXPECT_EQ(content[0]["top_logprobs"].size(), 2u);
    EXPECT_TRUE(content[0]["bytes"].is_array());
}

TEST(ServeHttp, ModelsAndHealth) {
    ServerProcess& s = shared_server();
    const Reply m = get(s, "/v1/models");
    ASSERT_EQ(m.status, 200);
    EXPECT_EQ(m.body["object"], "list");
    EXPECT_EQ(m.body["data"][0]["id"], "tiny-q8_0.gguf");
    EXPECT_EQ(m.body["data"][0]["meta"]["plans"], json::array({"flip", "late", "up"}));
    const Reply h = get(s, "/health");
    ASSERT_EQ(h.status, 200);
    EXPECT_EQ(h.body["status"], "ok");
    EXPECT_EQ(h.body["slots_total"], 4);
    // The model field, when given, must name the served model.
    EXPECT_EQ(post(s, "/v1/completions", completion(kPrompt, 2, {{"model", "tiny-q8_0.gguf"}})).status, 200);
}

// Prompts longer than a forward pass are read in chunks, next to other requests' tokens.
TEST(ServeHttp, LongPromptsInChunksEqualGenerate) {
    ServerProcess s(tiny_model(), {"--plans", plans_dir(), "--batch", "16", "--parallel", "3", "-t", "1"});
    std::vector<int> ids;
    std::string ids_text;
    for (int i = 0; i < 70; ++i) {
        ids.push_back(1 + (i * 37) % 500);
        ids_text += (i ? "," : "") + std::to_string(ids.back());
    }
    std::vector<std::string> got(3);
    std::vector<std::thread> clients;
    for (int k = 0; k < 3; ++k)
        clients.emplace_back([&, k] {
            json b = {{"prompt", ids}, {"max_tokens", 20}, {"temperature", 0}, {"ignore_eos", true}};
            if (k == 1) b["steering"] = "late";
            got[static_cast<size_t>(k)] = text_of(post(s, "/v1/completions", b));
        });
    for (auto& t : clients) t.join();
    const std::string plain = generate_text(tiny_model(), {"--tokens", ids_text, "-n", "20", "--ignore-eos"});
    EXPECT_EQ(got[0], plain);
    EXPECT_EQ(got[2], plain);
    EXPECT_EQ(got[1], generate_text(tiny_model(), {"--tokens", ids_text, "-n", "20", "--ignore-eos", "--steer",
                                                   plans_dir() + "/late.json"}));
}

TEST(ServeHttp, PromptAsTokenIdsEqualsGenerateTokens) {
    ServerProcess& s = shared_server();
    const Reply r = post(s, "/v1/completions",
                         {{"prompt", {1, 17, 99, 250}}, {"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}});
    EXPECT_EQ(text_of(r), generate_text(tiny_model(), {"--tokens", "1,17,99,250", "-n", "16", "--ignore-eos"}));
    EXPECT_EQ(r.body["usage"]["prompt_tokens"], 4);
    // max_tokens 0: the prompt is read, nothing is generated (generate -n 0 prints nothing).
    const Reply none = post(s, "/v1/completions", {{"prompt", {1, 17}}, {"max_tokens", 0}});
    EXPECT_EQ(text_of(none), "");
    EXPECT_EQ(none.body["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(none.body["usage"]["completion_tokens"], 0);
}

}  // namespace
}  // namespace critdim::server::test
