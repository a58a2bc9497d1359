// Ablation: plans that zero (or mean-set) one dimension at every block output, and the ablate
// command's ranking, Rank-r table and overlap on stories260K.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "critdim/eval.hpp"
#include "eval/eval_test_util.hpp"
#include "test_util.hpp"

namespace critdim::eval {
namespace {

TEST(EvalAblate, PlanZeroesOneDimAtEveryBlockOutputNotTheEmbedding) {
    const steer::Plan p = ablation_plan(7, 5, nullptr);
    ASSERT_EQ(p.interventions.size(), 1u);
    const steer::Intervention& iv = p.interventions[0];
    EXPECT_EQ(iv.point, model::HookPoint::resid_post);
    EXPECT_EQ(iv.layers, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(iv.dims, std::vector<int64_t>{7});
    EXPECT_EQ(iv.op, steer::Op::zero);
    // applied to the model, the dim is 0 in every block output
    const auto& m = test::stories_model();
    std::vector<steer::Plan> plans = {ablation_plan(7, m.hparams().n_layer, nullptr)};
    steer::Steering st(m, plans);
    model::ContextParams cp;
    cp.n_ctx = 16, cp.n_threads = 1;
    model::Context ctx(m, cp);
    st.attach(ctx);
    int seen = 0;
    float embed7 = 0.0f;
    ctx.hooks().observe_all_layers(model::HookPoint::resid_post, [&](const model::ConstRows& r) {
        for (int64_t i = 0; i < r.n_rows; ++i) EXPECT_EQ(r.row(i)[7], 0.0f);
        ++seen;
    });
    ctx.hooks().observe({model::HookPoint::embed, -1}, [&](const model::ConstRows& r) { embed7 = r.row(1)[7]; });
    const std::vector<int32_t> toks = {1, 300, 301, 302};
    ctx.decode(toks, false);
    EXPECT_EQ(seen, 5);
    EXPECT_NE(embed7, 0.0f);
}

TEST(EvalAblate, CommandRanksDimsAndReportsTableAndOverlap) {
    const std::string dir = critdim::test::temp_dir("ablate");
    const std::string mmlu = test::data_dir() + "/mmlu/test/";
    for (const char* s : {"astronomy", "anatomy"}) {
        const auto r = critdim::test::run_critdim({"scan", test::stories(), "--corpus", mmlu + s + "_test.csv", "--out",
                                                   dir + "/" + s + ".stats", "--ctx", "128", "--name", s, "-t", "2"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    auto r =
        critdim::test::run_critdim({"find", "--domain", dir + "/astronomy.stats", "--domain", dir + "/anatomy.stats",
                                    "--k", "3", "--gap", "0.05", "--out", dir + "/critical.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<std::string> base = {"ablate",
                                           test::stories(),
                                           "--data",
                                           test::data_dir() + "/mmlu",
                                           "--subjects",
                                           "astronomy,anatomy",
                                           "--questions",
                                           "4",
                                           "--ctx",
                                           "128",
                                           "--stats",
                                           dir + "/astronomy.stats",
                                           "--ranks",
                                           "1,10,100",
                                           "--top",
                                           "2",
                                           "--critical",
                                           dir + "/critical.json",
                                           "--json",
                                           "-t",
                                           "2"};
    r = critdim::test::run_critdim(base);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["mode"], "zero");
    ASSERT_GE(j["dims"].size(), 2u);
    for (size_t i = 1; i < j["dims"].size(); ++i) EXPECT_GE(j["dims"][i - 1]["drop"], j["dims"][i]["drop"]);
    ASSERT_EQ(j["rank_table"].size(), 2u);  // n_embd 64: no Rank-100
    EXPECT_EQ(j["rank_table"][0]["rank"], 1);
    ASSERT_EQ(j["overlap"].size(), 2u);
    EXPECT_EQ(j["overlap"][0]["domain"], "astronomy");
    EXPECT_GE(j["overlap"][0]["overlap"].get<double>(), 0.0);
    auto mean_args = base;
    mean_args.insert(mean_args.end(), {"--mode", "mean", "--dims", "0,1"});
    r = critdim::test::run_critdim(mean_args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["mode"], "mean");
    r = critdim::test::run_critdim({"ablate", test::stories(), "--data", test::data_dir() + "/mmlu", "--subjects",
                                    "astronomy", "--questions", "2", "--dims", "64"});
    EXPECT_EQ(r.exit_code, 4);
    EXPECT_NE(r.err.find("--dims: 64 is out of range (model has n_embd 64)"), std::string::npos) << r.err;
    r = critdim::test::run_critdim(
        {"ablate", test::stories(), "--data", test::data_dir() + "/mmlu", "--mode", "mean", "--dims", "1"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--mode mean needs --stats FILE"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace critdim::eval
