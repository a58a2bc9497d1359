// Multiple choice: Wilson intervals, lm-eval's continuation split, batched scoring equal to one
// question at a time, and malformed datasets as clear errors naming file and row.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "critdim/eval.hpp"
#include "critdim/steer.hpp"
#include "eval/eval_test_util.hpp"
#include "test_util.hpp"

namespace critdim::eval {
namespace {

using test::data_dir;
using test::write_file;

TEST(EvalMcq, WilsonInterval) {
    const Accuracy a = wilson(8, 10);
    EXPECT_DOUBLE_EQ(a.acc, 0.8);
    EXPECT_NEAR(a.ci_low, 0.4901624715, 1e-9);
    EXPECT_NEAR(a.ci_high, 0.9433178485, 1e-9);
    EXPECT_NEAR(wilson(0, 10).ci_high, 0.2775327999, 1e-9);
    EXPECT_EQ(wilson(0, 10).ci_low, 0.0);
    EXPECT_NEAR(wilson(50, 100).ci_low, 0.4038315304, 1e-9);
}

TEST(EvalMcq, SampleIsSeededAndPortable) {
    const auto a = sample_indices(100, 10, 7), b = sample_indices(100, 10, 7), c = sample_indices(100, 10, 8);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_EQ(a.size(), 10u);
    EXPECT_EQ(sample_indices(5, 10, 1).size(), 5u);
}

TEST(EvalMcq, SubjectsOfTheSharedFolder) {
    const auto s = mmlu_subjects(data_dir() + "/mmlu");
    EXPECT_EQ(s.size(), 57u);
    EXPECT_EQ(s.front(), "abstract_algebra");
    const auto qs = read_mmlu_questions(mmlu_subject_file(data_dir() + "/mmlu", "anatomy"), "anatomy");
    EXPECT_EQ(qs.size(), 135u);
    EXPECT_EQ(qs[0].prompt.rfind("The following are multiple choice questions (with answers) about anatomy.\n\n", 0),
              0u);
}

// stories260K splits " A" (only "▁B" is one token): multi-token scoring, and batching several
// sequences per pass gives the scores of one sequence per pass.
TEST(EvalMcq, MultiTokenScoringBatchedEqualsOneByOne) {
    std::vector<McqQuestion> qs =
        read_mmlu_questions(mmlu_subject_file(data_dir() + "/mmlu", "astronomy"), "astronomy");
    qs.resize(6);
    McqOptions o;
    o.n_threads = 1;
    o.n_ctx = 512;
    McqScorer batched(test::stories_model(), test::stories_tokenizer(), o);
    batched.prepare(qs);
    EXPECT_FALSE(batched.single_token());
    EXPECT_EQ(batched.scoring_case(), "multi-token");
    const auto pieces = batched.letter_pieces();
    ASSERT_EQ(pieces.size(), 4u);
    EXPECT_EQ(pieces[1], std::vector<std::string>{"\xe2\x96\x81"
                                                  "B"});
    EXPECT_GT(pieces[0].size(), 1u);
    const auto a = batched.score();
    o.n_seq = 1;
    McqScorer single(test::stories_model(), test::stories_tokenizer(), o);
    single.prepare(qs);
    const auto b = single.score();
    EXPECT_LT(batched.n_forward(), single.n_forward());
    for (size_t i = 0; i < qs.size(); ++i)
        for (int c = 0; c < 4; ++c) EXPECT_NEAR(a[i].loglik[c], b[i].loglik[c], 1e-3) << i << " " << c;
}

TEST(EvalMcq, CutFromTheLeftToFitTheContext) {
    std::vector<McqQuestion> qs =
        read_mmlu_questions(mmlu_subject_file(data_dir() + "/mmlu", "astronomy"), "astronomy");
    qs.resize(3);
    McqOptions o;
    o.n_threads = 1;
    o.n_ctx = 32;
    McqScorer scorer(test::stories_model(), test::stories_tokenizer(), o);
    scorer.prepare(qs);
    EXPECT_EQ(scorer.n_truncated(), 3);
    const auto s = scorer.score();
    EXPECT_TRUE(s[0].truncated);
}

TEST(EvalMcq, CliJsonAndSteering) {
    const std::vector<std::string> base = {"mmlu",        test::stories(),
                                           "--data",      data_dir() + "/mmlu",
                                           "--subjects",  "astronomy,anatomy",
                                           "--questions", "4",
                                           "--ctx",       "256",
                                           "-t",          "2",
                                           "--json"};
    auto r = critdim::test::run_critdim(base);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["scoring"], "multi-token");
    EXPECT_EQ(j["overall"]["n"], 8);
    ASSERT_EQ(j["subjects"].size(), 2u);
    EXPECT_EQ(j["subjects"][0]["subject"], "astronomy");
    EXPECT_EQ(j["subjects"][0]["ci95"].size(), 2u);
    // a plan that zeroes every dimension at every layer makes all four letters equally likely
    const std::string plan = write_file(
        "zero.json",
        R"({"format": "critdim-steering-plan", "version": 1, "interventions": [{"op": "zero", "layers": "all"}]})");
    auto args = base;
    args.insert(args.end(), {"--steer", plan});
    r = critdim::test::run_critdim(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["steer"][0], plan);
}

// The issue's proof: malformed datasets are clear errors naming the file and the row.
TEST(EvalMcq, MalformedDatasetsNameFileAndRow) {
    struct Case {
        const char* text;
        const char* message;
    } cases[] = {
        {"q1,a,b,c,d,A\nq2,a,b,c,B\n", "bad_test.csv:2: expected 6 fields, found 5"},
        {"q1,a,b,c,d,A\nq2,a,b,c,d,E\n", "bad_test.csv:2: answer 'E' is not one of A-D or 0-3"},
        {"question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,4\n",
         "bad_test.csv:2: answer '4' is not one of A-D or 0-3"},
        {"", "bad_test.csv: the corpus is empty"},
    };
    for (const Case& c : cases) {
        const std::string file = write_file("bad_test.csv", c.text);
        const std::string dir = file.substr(0, file.rfind('/'));
        const auto r = critdim::test::run_critdim({"mmlu", test::stories(), "--data", dir, "--json"});
        EXPECT_EQ(r.exit_code, 3) << c.text;
        EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    }
    const auto r =
        critdim::test::run_critdim({"mmlu", test::stories(), "--data", data_dir() + "/mmlu", "--subjects", "nosuch"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("no file for subject 'nosuch'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace critdim::eval
