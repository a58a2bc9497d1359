// Jailbreak evaluation: instruction sets in every shared layout, batched greedy generation equal
// to one prompt at a time, the command's rates.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "critdim/eval.hpp"
#include "eval/eval_test_util.hpp"
#include "test_util.hpp"

namespace critdim::eval {
namespace {

TEST(EvalJailbreak, ReadsEverySharedLayout) {
    const std::string d = test::data_dir();
    const auto adv_csv = read_instructions(d + "/harmful/advbench/harmful_behaviors.csv");
    const auto adv_json = read_instructions(d + "/refusal_direction/processed/advbench.json");
    ASSERT_EQ(adv_csv.size(), 520u);
    ASSERT_EQ(adv_json.size(), 520u);
    for (size_t i = 0; i < adv_csv.size(); ++i) EXPECT_EQ(adv_csv[i].text, adv_json[i].text) << i;
    EXPECT_EQ(read_instructions(d + "/harmful/jailbreakbench/behaviors.csv").size(), 100u);
    EXPECT_EQ(read_instructions(d + "/harmful/harmbench/harmbench_behaviors_text_test.csv").size(), 320u);
    const auto jbb = read_instructions(d + "/refusal_direction/processed/jailbreakbench.json");
    EXPECT_EQ(jbb.size(), 100u);
    EXPECT_FALSE(jbb[0].category.empty());
}

TEST(EvalJailbreak, MalformedSetsNameFileAndRow) {
    try {
        read_instructions(test::write_file("x.csv", "a,b\n1,2\n"));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("x.csv:1: no instruction column"), std::string::npos) << e.what();
    }
    try {
        read_instructions(test::write_file("y.csv", "goal,target\nx,y\nz\n"));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("y.csv:3: expected 2 fields, found 1"), std::string::npos) << e.what();
    }
    try {
        read_instructions(test::write_file("z.json", R"([{"instruction": "a"}, {"category": "b"}])"));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("z.json: item 1: no \"instruction\" string"), std::string::npos)
            << e.what();
    }
    try {
        read_instructions(test::write_file("e.csv", ""));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("e.csv: the file is empty"), std::string::npos) << e.what();
    }
}

TEST(EvalJailbreak, BatchedGenerationEqualsOneByOne) {
    const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily and Tom went to the park. They",
                                              "One day"};
    GenerateOptions o;
    o.max_tokens = 12, o.chat = false, o.n_threads = 1, o.n_seq = 4;
    Generator batched(test::stories_model(), test::stories_tokenizer(), o);
    const auto a = batched.generate(prompts);
    o.n_seq = 1;
    Generator single(test::stories_model(), test::stories_tokenizer(), o);
    const auto b = single.generate(prompts);
    EXPECT_EQ(a, b);
    EXPECT_FALSE(a[0].empty());
}

TEST(EvalJailbreak, CliRatesAndCompletionsFile) {
    const std::string out = critdim::test::temp_dir("jb") + "/c.json";
    const auto r = critdim::test::run_critdim(
        {"jailbreak", test::stories(), "--harmful", test::data_dir() + "/harmful/advbench/harmful_behaviors.csv",
         "--harmless", test::data_dir() + "/refusal_direction/splits/harmless_test.json", "--prompts", "4",
         "--max-tokens", "8", "--out", out, "--json", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["harmful"]["n"], 4);
    EXPECT_EQ(j["harmless"]["n"], 4);
    EXPECT_FALSE(j["chat"].get<bool>());  // stories260K has no chat template
    // the completions file is what `judge` reads, and the judge agrees with itself
    const auto jr = critdim::test::run_critdim({"judge", "--completions", out, "--json"});
    ASSERT_EQ(jr.exit_code, 0) << jr.err;
    EXPECT_EQ(nlohmann::json::parse(jr.out)["labels_reproduced"], 4);
    EXPECT_DOUBLE_EQ(nlohmann::json::parse(jr.out)["attack_success_rate"].get<double>(),
                     j["harmful"]["attack_success_rate"].get<double>());
}

}  // namespace
}  // namespace critdim::eval
