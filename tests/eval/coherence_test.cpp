// Perplexity and the KL coherence guard on stories260K and WikiText-2.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "critdim/eval.hpp"
#include "eval/eval_test_util.hpp"
#include "test_util.hpp"

namespace critdim::eval {
namespace {

steer::Plan add_plan(double value) {
    steer::Plan p;
    p.source = "test";
    steer::Intervention iv;
    iv.where = "test";
    iv.all_layers = true;
    iv.values.data.assign(64, static_cast<float>(value));
    iv.values.n_rows = 1, iv.values.n_cols = 64;
    p.interventions.push_back(iv);
    return p;
}

PerplexityResult run(double value, bool kl) {
    const auto& m = test::stories_model();
    const auto& tok = test::stories_tokenizer();
    const std::vector<int32_t> tokens =
        tok.encode(read_text_file(test::data_dir() + "/wikitext/wiki.test.raw"), true, false);
    PerplexityOptions o;
    o.n_ctx = 128, o.max_chunks = 4, o.n_threads = 1;
    model::Context ctx(m, perplexity_context(m, o, static_cast<int64_t>(tokens.size()), "wiki"));
    std::vector<steer::Plan> plans = {add_plan(value)};
    steer::Steering steering(m, plans);
    steering.attach(ctx);
    return perplexity(ctx, tok, tokens, o, kl ? &steering : nullptr);
}

TEST(EvalCoherence, KlIsZeroWithoutChangeAndPositiveWithIt) {
    const PerplexityResult none = run(0.0, true);
    // a zero vector leaves the numbers as they are, up to float rounding of the hooked forward path
    EXPECT_NEAR(none.kl_mean, 0.0, 1e-6);
    EXPECT_NEAR(none.ppl, none.base_ppl, 1e-6 * none.ppl);
    const PerplexityResult steered = run(0.5, true);
    EXPECT_GT(steered.kl_mean, 1e-3);
    EXPECT_GE(steered.kl_max, steered.kl_mean);
    EXPECT_DOUBLE_EQ(steered.base_ppl, none.base_ppl);  // the unsteered pass is the model's own
    EXPECT_DOUBLE_EQ(run(0.5, false).ppl, steered.ppl);
    EXPECT_NE(steered.ppl, none.ppl);
    EXPECT_EQ(steered.n_scored, 4 * 63);
}

TEST(EvalCoherence, PplKlFlag) {
    const std::string plan = test::write_file(
        "p.json",
        R"({"format": "critdim-steering-plan", "version": 1, "interventions": [{"op": "add", "layers": "all", "dims": [3], "values": [2.0]}]})");
    const std::string wiki = test::data_dir() + "/wikitext/wiki.test.raw";
    auto r = critdim::test::run_critdim({"ppl", test::stories(), "-f", wiki, "--ctx", "128", "--chunks", "3", "--steer",
                                         plan, "--kl", "--json", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j["kl_mean"].get<double>(), 0.0);
    EXPECT_GT(j["unsteered_ppl"].get<double>(), 1.0);
    r = critdim::test::run_critdim({"ppl", test::stories(), "-f", wiki, "--kl"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "critdim: error: --kl needs --steer PLAN\n");
}

}  // namespace
}  // namespace critdim::eval
