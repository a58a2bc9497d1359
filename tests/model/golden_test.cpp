// Every golden case without a control vector: logits, every layer's resid_post and the
// greedy continuation match llama.cpp (or, for qwen3, the float64 reference) within the
// tolerances of the case's manifest.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "critdim/model.hpp"
#include "test_util.hpp"

namespace critdim::model {
namespace {

using nlohmann::json;

struct GoldenCase {
    std::string dir;  // folder of the manifest
    json spec;
    std::string id() const { return spec["id"].get<std::string>(); }
};

void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.id(); }

std::vector<GoldenCase> load_cases() {
    std::vector<GoldenCase> cases;
    for (const std::string sub : {"golden", "golden/qwen3"}) {
        const std::string dir = test::shared_dir() + "/" + sub;
        std::ifstream f(dir + "/MANIFEST.json");
        const json manifest = json::parse(f);
        for (const json& c : manifest["cases"])
            if (c["control_vector"].is_null()) cases.push_back({dir, c});
    }
    return cases;
}

// Largest violation of |a - b| <= atol + rtol |b| over n elements; returns the worst index.
struct Check {
    double worst_excess = -INFINITY;
    double max_abs = 0;
    int64_t worst = -1;
};
Check compare(const float* a, const float* b, int64_t n, double atol, double rtol) {
    Check c;
    for (int64_t i = 0; i < n; ++i) {
        const double diff = std::fabs(static_cast<double>(a[i]) - b[i]);
        const double excess = diff - (atol + rtol * std::fabs(b[i]));
        c.max_abs = std::max(c.max_abs, diff);
        if (excess > c.worst_excess || std::isnan(diff)) {
            c.worst_excess = std::isnan(diff) ? INFINITY : excess;
            c.worst = i;
        }
    }
    return c;
}

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, LogitsResidualsAndGreedyMatch) {
    const GoldenCase& gc = GetParam();
    const json& c = gc.spec;
    auto model = Model::load(gc.dir + "/" + c["model"].get<std::string>());
    const HParams& hp = model->hparams();
    ASSERT_EQ(hp.n_vocab, c["n_vocab"].get<int64_t>());
    ASSERT_EQ(hp.n_embd, c["n_embd"].get<int64_t>());
    ASSERT_EQ(hp.n_layer, c["n_layer"].get<int64_t>());
    const std::vector<int32_t> prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const auto T = static_cast<int64_t>(prompt.size());
    const int n_gen = c["greedy"]["n_gen"].get<int>();

    ContextParams cp;
    cp.n_ctx = std::max<int64_t>(64, T + n_gen);
    cp.n_batch = cp.n_ctx;
    cp.n_threads = 2;
    Context ctx(*model, cp);
    std::vector<float> resid(static_cast<size_t>(hp.n_layer * T * hp.n_embd));
    ctx.hooks().observe_all_layers(HookPoint::resid_post, [&](const ConstRows& rows) {
        std::copy(rows.data, rows.data + rows.n_rows * rows.n_embd, resid.begin() + rows.site.layer * T * hp.n_embd);
    });
    ctx.decode(prompt, /*all_logits=*/true);
    ctx.hooks().clear();

    const json& tol = c["tolerance"];
    // logits
    {
        const NpyArray golden = read_npy(gc.dir + "/" + c["files"]["logits"]["path"].get<std::string>());
        ASSERT_EQ(golden.size(), T * hp.n_vocab);
        for (int64_t t = 0; t < T; ++t) {
            const Check chk = compare(ctx.logits(t), golden.data.data() + t * hp.n_vocab, hp.n_vocab,
                                      tol["logits"]["atol"].get<double>(), tol["logits"]["rtol"].get<double>());
            EXPECT_LE(chk.worst_excess, 0.0)
                << "logits row " << t << " token " << chk.worst << ": max |diff| " << chk.max_abs;
        }
    }
    // resid_post, per layer
    {
        const NpyArray golden = read_npy(gc.dir + "/" + c["files"]["resid_post"]["path"].get<std::string>());
        ASSERT_EQ(golden.size(), static_cast<int64_t>(resid.size()));
        const json& rt = tol["resid_post"];
        for (int64_t l = 0; l < hp.n_layer; ++l) {
            const double atol =
                rt.contains("atol_per_layer") ? rt["atol_per_layer"][l].get<double>() : rt["atol"].get<double>();
            const int64_t n = T * hp.n_embd;
            const Check chk =
                compare(resid.data() + l * n, golden.data.data() + l * n, n, atol, rt["rtol"].get<double>());
            EXPECT_LE(chk.worst_excess, 0.0) << "resid_post." << l << " element " << chk.worst << ": max |diff| "
                                             << chk.max_abs << " (atol " << atol << ")";
        }
    }
    // greedy continuation, fed llama.cpp's own tokens; our choice must agree at every step up
    // to the first whose margin is within 2 x atol (golden/README.md, "Greedy continuations").
    {
        const NpyArray golden = read_npy(gc.dir + "/" + c["files"]["gen_logits"]["path"].get<std::string>());
        const std::vector<int32_t> tokens = c["greedy"]["tokens"].get<std::vector<int32_t>>();
        const std::vector<double> margins = c["greedy"]["margins"].get<std::vector<double>>();
        const double atol = tol["gen_logits"]["atol"].get<double>(), rtol = tol["gen_logits"]["rtol"].get<double>();
        std::vector<float> row(ctx.logits(T - 1), ctx.logits(T - 1) + hp.n_vocab);
        bool comparable = true;
        int agreed = 0;
        for (int i = 0; i < n_gen; ++i) {
            const Check chk = compare(row.data(), golden.data.data() + i * hp.n_vocab, hp.n_vocab, atol, rtol);
            EXPECT_LE(chk.worst_excess, 0.0) << "gen_logits row " << i << ": max |diff| " << chk.max_abs;
            if (margins[i] < 2 * atol) comparable = false;
            if (comparable) {
                ASSERT_EQ(Sampler::argmax(row.data(), hp.n_vocab), tokens[i]) << "greedy step " << i;
                ++agreed;
            }
            ctx.decode(std::span<const int32_t>(&tokens[i], 1), false);
            row.assign(ctx.logits(0), ctx.logits(0) + hp.n_vocab);
        }
        RecordProperty("greedy_steps_compared", agreed);
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, Golden, ::testing::ValuesIn(load_cases()),
                         [](const ::testing::TestParamInfo<GoldenCase>& info) {
                             std::string name = info.param.id();
                             for (char& ch : name)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return name;
                         });

// Free-running greedy generation through the KV cache reproduces llama.cpp's tokens (not fed).
TEST(GoldenGreedy, Stories260KContinuesOnceUponATime) {
    const std::string dir = test::shared_dir() + "/golden";
    std::ifstream f(dir + "/MANIFEST.json");
    const json manifest = json::parse(f);
    json c;
    for (const json& x : manifest["cases"])
        if (x["id"] == "stories260K") c = x;
    ASSERT_FALSE(c.is_null());
    auto model = Model::load(dir + "/" + c["model"].get<std::string>());
    ContextParams cp;
    cp.n_ctx = 128;
    cp.n_threads = 2;
    Context ctx(*model, cp);
    const std::vector<int32_t> prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    ctx.decode(prompt, false);
    Sampler greedy({});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
        const int32_t tok = greedy.sample(ctx.logits(0), model->hparams().n_vocab);
        out.push_back(tok);
        ctx.decode(std::span<const int32_t>(&tok, 1), false);
    }
    EXPECT_EQ(out, c["greedy"]["tokens"].get<std::vector<int32_t>>());
}

}  // namespace
}  // namespace critdim::model
