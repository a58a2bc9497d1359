// --steer and --alpha in generate and ppl, end to end on the trained stories260K model.
#include <gtest/gtest.h>

#include "steer/steer_test_util.hpp"
#include "test_util.hpp"

namespace critdim::steer {
namespace {

using critdim::test::run_critdim;

std::string stories() { return test::golden_dir() + "/models/stories260K-f32.gguf"; }

std::string dense_plan(const char* positions) {
    std::string v;
    for (int i = 0; i < 64; ++i) v += (i ? "," : "") + std::to_string((i % 5) - 2);
    return test::write_temp("plan.json", test::plan_text(R"({"op": "add", "layers": {"from": 1, "to": 4}, "values": [)" +
                                                         v + R"(], "positions": ")" + positions + "\"}"));
}

std::vector<std::string> generate_args(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"generate", stories(), "--prompt", "Once upon a time", "-n", "12", "-t", "2", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

TEST(SteerCli, GenerateSteersAndAlphaZeroIsTheModel) {
    const auto base = run_critdim(generate_args({}));
    ASSERT_EQ(base.exit_code, 0) << base.err;
    const std::string plan = dense_plan("all");
    const auto steered = run_critdim(generate_args({"--steer", plan, "--alpha", "3"}));
    ASSERT_EQ(steered.exit_code, 0) << steered.err;
    const auto off = run_critdim(generate_args({"--steer", plan, "--alpha", "0"}));
    ASSERT_EQ(off.exit_code, 0) << off.err;
    auto tokens = [](const std::string& out) { return out.substr(out.find("\"tokens\""), out.find(']', out.find("\"tokens\"")) - out.find("\"tokens\"")); };
    EXPECT_NE(tokens(steered.out), tokens(base.out));
    EXPECT_EQ(tokens(off.out), tokens(base.out));
    // a generated-only plan does not change the first token, which the prompt's logits choose
    const auto gen = run_critdim(generate_args({"--steer", dense_plan("generated"), "--alpha", "3"}));
    ASSERT_EQ(gen.exit_code, 0) << gen.err;
    const std::string t_base = tokens(base.out), t_gen = tokens(gen.out);
    EXPECT_EQ(t_gen.substr(0, t_gen.find(',')), t_base.substr(0, t_base.find(',')));
    EXPECT_NE(t_gen, t_base);
}

TEST(SteerCli, UsageErrors) {
    const std::string plan = dense_plan("all");
    auto r = run_critdim(generate_args({"--alpha", "2"}));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "critdim: error: --alpha needs --steer PLAN\n");
    r = run_critdim(generate_args({"--steer", plan, "--steer", plan, "--steer", plan, "--alpha", "1", "--alpha", "2"}));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "critdim: error: --alpha: 2 values for 3 plans (give one, or one per --steer)\n");
}

TEST(SteerCli, PplTakesAPlan) {
    const std::string text = test::write_temp("story.txt", std::string(40, ' ') + [] {
        std::string s;
        for (int i = 0; i < 20; ++i) s += "Once upon a time, there was a little girl named Lily. She loved to play. ";
        return s;
    }());
    const auto base = run_critdim({"ppl", stories(), "-f", text, "-c", "64", "--json", "-t", "2"});
    ASSERT_EQ(base.exit_code, 0) << base.err;
    const auto steered = run_critdim({"ppl", stories(), "-f", text, "-c", "64", "--json", "-t", "2", "--steer", dense_plan("all")});
    ASSERT_EQ(steered.exit_code, 0) << steered.err;
    EXPECT_NE(base.out, steered.out);
}

}  // namespace
}  // namespace critdim::steer
