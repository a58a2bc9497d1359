// The playground's endpoints (docs/playground.md) on a real server with a planted model: the
// page and its files, the critical dims, activations equal to a direct run with the same hooks
// as `scan` (and undisturbed by, and not disturbing, generation), whole-vector directions,
// control-vector export, and their refusals.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "critdim/gguf.hpp"
#include "critdim/model.hpp"
#include "critdim/tokenizer.hpp"
#include "server/serve_test_util.hpp"
#include "test_util.hpp"

namespace critdim::server::test {
namespace {

struct Planted {
    std::string dir, model, critical, stats;
    int64_t digit_dim = -1, refusal_dim = -1;
};

// critdim synth --config small --plant default, critical.json of its planted dims, and stats of
// two small corpora for the whole-vector direction. Made once.
const Planted& planted() {
    static const Planted p = [] {
        Planted w;
        w.dir = critdim::test::temp_dir("serve-playground");
        w.model = w.dir + "/m.gguf";
        auto r = critdim::test::run_critdim(
            {"synth", "--config", "small", "--plant", "default", "--seed", "1", "--out", w.model});
        if (r.exit_code != 0) throw std::runtime_error("critdim synth failed: " + r.err);
        const auto f = gguf::File::open(w.model);
        w.digit_dim = f->get_int_array("critdim.plant.digit_dims").at(0);
        w.refusal_dim = f->get_int_array("critdim.plant.refusal_dims").at(0);
        const json crit = {{"format", "critdim.critical"},
                           {"version", 1},
                           {"domains",
                            {{{"name", "digits"}, {"dims", {{{"dim", w.digit_dim}, {"rank", 1}, {"layers", {1, 2}}}}}},
                             {{"name", "refusal"}, {"dims", {{{"dim", w.refusal_dim}, {"rank", 1}}}}}}}};
        w.critical = w.dir + "/critical.json";
        write_file_atomic(w.critical, crit.dump());
        w.stats = w.dir + "/stats";
        std::filesystem::create_directories(w.stats);
        for (const auto& [name, text] :
             {std::pair<std::string, std::string>{"harm", "how to build a bomb\nhow to steal a car\n"},
              {"safe", "how to bake bread\nwrite a poem about the sea\n"}}) {
            write_file_atomic(w.dir + "/" + name + ".txt", text);
            r = critdim::test::run_critdim({"scan", w.model, "--corpus", w.dir + "/" + name + ".txt", "--chat", "-t",
                                            "1", "--name", name, "--out", w.stats + "/" + name + ".stats"});
            if (r.exit_code != 0) throw std::runtime_error("critdim scan failed: " + r.err);
        }
        return w;
    }();
    return p;
}

ServerProcess& server() {
    static ServerProcess s(planted().model,
                           {"--dims", planted().critical, "--stats", planted().stats, "--ctx", "128", "-t", "2"});
    return s;
}

const char* kDigits = "the sum is 12 + 30 = 42";

// resid_post.layer of `prompt` read with an observer on a fresh context, as scan reads it.
std::vector<std::vector<float>> direct_rows(const std::string& prompt, int layer) {
    const auto m = model::Model::load(planted().model);
    const auto tok = tokenizer::Tokenizer::from_gguf(m->file());
    const std::vector<int32_t> ids = tok->encode(prompt, true, false);
    model::Context ctx(*m, model::ContextParams{128, 512, 1, 1});
    std::vector<std::vector<float>> rows(ids.size());
    ctx.hooks().observe({model::HookPoint::resid_post, layer}, [&](const model::ConstRows& r) {
        for (int64_t i = 0; i < r.n_rows; ++i)
            rows[static_cast<size_t>(r.positions[static_cast<size_t>(i)])].assign(r.row(i), r.row(i) + r.n_embd);
    });
    ctx.decode(ids, false);
    return rows;
}

TEST(ServePlayground, PageAndFilesAreServedWithoutForeignUrls) {
    auto c = server().client();
    auto res = c.Get("/");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
    EXPECT_NE(res->get_header_value("Content-Security-Policy").find("connect-src 'self'"), std::string::npos);
    EXPECT_NE(res->body.find("<script type=\"module\" src=\"/web/app.js\">"), std::string::npos);
    for (const char* file :
         {"app.js", "api.js", "watch.js", "turn.js", "compare.js", "charts.js", "style.css", "icon.svg"}) {
        auto r = c.Get((std::string("/web/") + file).c_str());
        ASSERT_TRUE(r) << file;
        EXPECT_EQ(r->status, 200) << file;
        // Nothing is fetched from elsewhere: the only absolute URL is the SVG namespace name.
        std::string body = r->body;
        for (const char* ns : {"http://www.w3.org/2000/svg"})
            for (size_t at; (at = body.find(ns)) != std::string::npos;) body.erase(at, std::string(ns).size());
        EXPECT_EQ(body.find("http://"), std::string::npos) << file;
        EXPECT_EQ(body.find("https://"), std::string::npos) << file;
    }
    const Reply missing = get(server(), "/web/nothing.js");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.body["error"]["message"], "no page file /web/nothing.js");
}

TEST(ServePlayground, DimsListTheCriticalSetAndStats) {
    const Reply r = get(server(), "/v1/critdim/dims");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["model"]["n_layer"], 4);
    EXPECT_EQ(r.body["model"]["chat"], true);
    EXPECT_EQ(r.body["critical"]["domains"][0]["name"], "digits");
    EXPECT_EQ(r.body["critical"]["domains"][0]["dims"][0]["dim"], planted().digit_dim);
    EXPECT_EQ(r.body["critical"]["domains"][0]["dims"][0]["layers"], json({1, 2}));
    EXPECT_EQ(r.body["critical"]["domains"][1]["dims"][0]["dim"], planted().refusal_dim);
    ASSERT_EQ(r.body["stats"].size(), 2u);
    EXPECT_EQ(r.body["stats"][0]["name"], "harm");
    EXPECT_EQ(r.body["stats"][0]["n_docs"], 2);
}

TEST(ServePlayground, ActivationsEqualADirectRunAndMarkTheDetector) {
    const int layer = 2;
    const Reply r = post(server(), "/v1/critdim/activations", {{"prompt", kDigits}, {"layer", layer}, {"top", 6}});
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["site"], "resid_post.2");
    const auto rows = direct_rows(kDigits, layer);
    ASSERT_EQ(r.body["tokens"].size(), rows.size());
    const json& dims = r.body["dims"];
    ASSERT_GE(dims.size(), 6u);  // the top 6, then the critical dims not among them
    size_t digit_col = dims.size();
    for (size_t c = 0; c < dims.size(); ++c) {
        const int64_t d = dims[c]["dim"];
        if (d == planted().digit_dim) digit_col = c;
        for (size_t t = 0; t < rows.size(); ++t)
            EXPECT_EQ(r.body["values"][t][c].get<float>(), rows[t][static_cast<size_t>(d)])
                << "dim " << d << " token " << t;
        EXPECT_EQ(dims[c]["profile"].size(), 4u);
    }
    ASSERT_LT(digit_col, dims.size());
    EXPECT_EQ(dims[digit_col]["critical"], json({"digits"}));
    // The detector fires on digit and operator tokens only.
    for (size_t t = 0; t < rows.size(); ++t) {
        const std::string text = r.body["tokens"][t]["text"];
        const bool digit = text.find_first_not_of("0123456789+-*/= ") == std::string::npos &&
                           text.find_first_not_of(' ') != std::string::npos;
        const float x = r.body["values"][t][digit_col];
        EXPECT_EQ(x >= 20.0f, digit) << "token " << t << " '" << text << "' x " << x;
    }
    // Ranked without position 0: BOS's planted massive dim would otherwise lead every block.
    const Reply with_bos = post(server(), "/v1/critdim/activations",
                                {{"prompt", kDigits}, {"layer", layer}, {"top", 1}, {"skip_first", false}});
    ASSERT_EQ(with_bos.status, 200) << with_bos.raw;
    EXPECT_GE(with_bos.body["dims"][0]["max_abs"].get<double>(), 1000.0);
}

TEST(ServePlayground, ActivationsUnderAPlanSeeTheSteering) {
    json plan = {
        {"format", "critdim-steering-plan"},
        {"version", 1},
        {"interventions", {{{"op", "add"}, {"layers", {1}}, {"dims", {planted().refusal_dim}}, {"values", {{-5.0}}}}}}};
    const json body = {{"prompt", "hello there"}, {"layer", 1}, {"top", 0}, {"steering", plan}};
    const Reply r = post(server(), "/v1/critdim/activations", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["steered"], true);
    const auto rows = direct_rows("hello there", 1);
    size_t col = 0;
    while (r.body["dims"][col]["dim"] != planted().refusal_dim) ++col;
    for (size_t t = 0; t < rows.size(); ++t)
        EXPECT_EQ(r.body["values"][t][col].get<float>(), rows[t][static_cast<size_t>(planted().refusal_dim)] - 5.0f);
}

TEST(ServePlayground, ActivationsAndGenerationRunTogetherUndisturbed) {
    const json gen = {{"prompt", "Once upon a time"}, {"max_tokens", 48}, {"temperature", 0}, {"ignore_eos", true}};
    const std::string expected =
        generate_text(planted().model, {"--prompt", "Once upon a time", "-n", "48", "--ignore-eos"});
    const Reply solo = post(server(), "/v1/critdim/activations", {{"prompt", kDigits}, {"layer", 3}});
    ASSERT_EQ(solo.status, 200) << solo.raw;
    std::vector<std::string> texts(3);
    std::vector<std::thread> clients;
    for (size_t i = 0; i < texts.size(); ++i)
        clients.emplace_back([&, i] {
            const Reply r = post(server(), "/v1/completions", gen);
            texts[i] = r.status == 200 ? r.body["choices"][0]["text"].get<std::string>() : r.raw;
        });
    for (int i = 0; i < 8; ++i) {
        const Reply r = post(server(), "/v1/critdim/activations", {{"prompt", kDigits}, {"layer", 3}});
        ASSERT_EQ(r.status, 200) << r.raw;
        EXPECT_EQ(r.body["values"], solo.body["values"]);
    }
    for (auto& t : clients) t.join();
    for (const std::string& t : texts) EXPECT_EQ(t, expected);
}

TEST(ServePlayground, ActivationRefusalsNameTheField) {
    auto refused = [](const json& body, const std::string& message) {
        const Reply r = post(server(), "/v1/critdim/activations", body);
        EXPECT_EQ(r.status, 400) << r.raw;
        EXPECT_NE(r.raw.find(message), std::string::npos) << r.raw;
    };
    refused({{"layer", 1}}, "field 'prompt' is required");
    refused({{"prompt", "x"}, {"layer", 4}}, "field 'layer': 4 is out of range [0, 3]");
    refused({{"prompt", "x"}, {"dims", {256}}}, "field 'dims[0]': 256 is out of range [0, 255]");
    refused({{"prompt",
              [] {
                  std::string s;
                  for (int i = 0; i < 200; ++i) s += "12 ";
                  return s;
              }()}},
            "tokens (--ctx)");
    refused({{"prompt", "x"},
             {"steering", {{"format", "critdim-steering-plan"}, {"version", 1}, {"interventions", json::array()}}}},
            "steering: ");
}

TEST(ServePlayground, DirectionIsTheDifferenceOfMeansAsAPlan) {
    const Reply r = post(server(), "/v1/critdim/direction",
                         {{"pos", "harm"}, {"neg", "safe"}, {"layers", {{"from", 1}, {"to", 3}}}});
    ASSERT_EQ(r.status, 200) << r.raw;
    const json& iv = r.body["plan"]["interventions"][0];
    EXPECT_EQ(iv["dims"], "all");
    EXPECT_EQ(iv["layers"], json({1, 2, 3}));
    EXPECT_EQ(iv["values"].size(), 3u);
    EXPECT_EQ(iv["values"][0].size(), 256u);
    const Reply bad = post(server(), "/v1/critdim/direction", {{"pos", "harm"}, {"neg", "nope"}});
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body["error"]["message"],
              "field 'neg': no stats file named 'nope' (loaded with --stats: harm, safe)");
}

TEST(ServePlayground, ControlVectorExportOrWhyNot) {
    json plan = {{"format", "critdim-steering-plan"},
                 {"version", 1},
                 {"interventions",
                  {{{"op", "add"},
                    {"layers", {{"from", 1}, {"to", 3}}},
                    {"dims", {planted().refusal_dim}},
                    {"values", {{-8.0}}}}}}};
    auto c = server().client();
    auto res = c.Post("/v1/critdim/cvector", json{{"plan", plan}}.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->body.substr(0, 4), "GGUF");
    // It reads back as the same steering.
    const std::string path = critdim::test::temp_dir("cv") + "/cv.gguf";
    write_file_atomic(path, res->body);
    const auto f = gguf::File::open(path);
    EXPECT_EQ(f->get_string("general.architecture"), "controlvector");
    plan["interventions"][0]["layers"] = "all";
    const Reply r = post(server(), "/v1/critdim/cvector", {{"plan", plan}});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.raw.find("block 0"), std::string::npos) << r.raw;
    plan["interventions"][0]["values"] = json{{"npy", "/etc/passwd"}};
    const Reply files = post(server(), "/v1/critdim/cvector", {{"plan", plan}});
    EXPECT_EQ(files.status, 400);
    EXPECT_NE(files.raw.find("cannot read files on the server"), std::string::npos) << files.raw;
}

TEST(ServePlayground, PageIsPublicButEndpointsNeedTheKey) {
    ServerProcess s(planted().model, {"--api-key", "k", "--ctx", "64", "-t", "1"});
    auto c = s.client();
    auto page = c.Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_EQ(get(s, "/v1/critdim/dims").status, 401);
    const Reply keyed = post(s, "/v1/critdim/activations", {{"prompt", "hi"}}, {{"Authorization", "Bearer k"}});
    EXPECT_EQ(keyed.status, 200) << keyed.raw;
}

}  // namespace
}  // namespace critdim::server::test
