// find: the criteria on hand-made statistics, and stories260K end to end on the shared data.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"
#include "test_util.hpp"

namespace critdim::analysis {
namespace {

// Two layers, 8 dimensions; `active` documents of `n_docs` activate dim `d` at layer 1.
Stats made(const std::string& name, int64_t n_docs, int64_t d, int64_t active, double mag) {
    Stats s;
    s.init({"resid_post.0", "resid_post.1"}, 8);
    s.header.name = name;
    s.header.model_hash = "xxh3_64:0";
    s.header.policy = "last";
    s.header.sigma_axis = "vector";
    s.header.n_docs = n_docs;
    s.count = {n_docs, n_docs};
    for (size_t i = 0; i < s.s.sum_abs.size(); ++i) s.s.sum_abs[i] = static_cast<double>(n_docs);  // mean |x| 1
    s.s.sum_abs[s.at(1, d)] = mag * static_cast<double>(n_docs);
    s.s.max_abs[s.at(1, d)] = 2 * mag;
    s.s.active_docs[s.at(1, d)] = active;
    s.active_any[static_cast<size_t>(d)] = active;
    return s;
}

TEST(FindCriteria, PaperTakesTheGapThenMagnitude) {
    std::vector<std::pair<std::string, Stats>> dom, vs;
    Stats math = made("math", 10, 3, 9, 50.0);
    math.s.active_docs[math.at(0, 5)] = 5;  // a 0.5 gap at layer 0 only, small magnitude
    math.active_any[5] = 5;
    dom.emplace_back("math.stats", math);
    vs.emplace_back("bio.stats", made("bio", 20, 6, 18, 40.0));
    FindOptions o;
    o.k = 2;
    auto r = find_critical(dom, vs, o);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].n_candidates, 3);  // dims 3, 5 (more active) and 6 (less active: |gap|)
    ASSERT_EQ(r[0].dims.size(), 2u);
    EXPECT_EQ(r[0].dims[0].dim, 3);
    EXPECT_DOUBLE_EQ(r[0].dims[0].freq_domain, 0.9);
    EXPECT_DOUBLE_EQ(r[0].dims[0].gap, 0.9);
    EXPECT_EQ(r[0].dims[0].layers, (std::vector<int>{1}));
    EXPECT_DOUBLE_EQ(r[0].dims[0].mean_abs_domain, 50.0);
    o.gap_positive = true;
    r = find_critical(dom, vs, o);
    EXPECT_EQ(r[0].n_candidates, 2);
    EXPECT_EQ(r[0].dims[1].dim, 5);
    EXPECT_EQ(r[0].dims[1].layers, (std::vector<int>{0}));

    // Each domain against the others; ratio ranks by mean |x| over the rest.
    dom.emplace_back("bio.stats", made("bio", 20, 6, 18, 40.0));
    o.criterion = Criterion::ratio;
    o.k = 1;
    r = find_critical(dom, {}, o);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].dims[0].dim, 3);
    EXPECT_DOUBLE_EQ(r[0].dims[0].ratio, 50.0);
    EXPECT_EQ(r[1].name, "bio");
    EXPECT_EQ(r[1].dims[0].dim, 6);
}

TEST(FindCriteria, MismatchedFilesAreRefused) {
    std::vector<std::pair<std::string, Stats>> dom{{"a.stats", made("a", 5, 1, 5, 3)}};
    Stats other = made("b", 5, 1, 0, 1);
    other.header.model_hash = "xxh3_64:1";
    try {
        find_critical(dom, {{"b.stats", other}}, {});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::mismatch);
        EXPECT_NE(std::string(e.what()).find("b.stats: model.hash differs"), std::string::npos) << e.what();
    }
    EXPECT_THROW(find_critical(dom, {}, {}), Error);  // paper needs something to compare with
}

// The proof on a real model: stories260K scans MMLU math subjects and WikiText.
TEST(FindEndToEnd, Stories260KMmluMathAgainstWikitext) {
    const std::string dir = test::temp_dir("e2e");
    const std::string model = test::shared_dir() + "/golden/models/stories260K-f32.gguf";
    const std::string mmlu = test::shared_dir() + "/data/mmlu/test/";
    auto r = test::run_critdim({"scan", model, "--corpus", mmlu + "abstract_algebra_test.csv", "--corpus",
                                mmlu + "college_mathematics_test.csv", "--shard", "0/4", "--name", "math", "--ctx",
                                "512", "-t", "1", "--out", dir + "/math.stats", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["n_docs"], 50);
    r = test::run_critdim({"scan", model, "--corpus", test::shared_dir() + "/data/wikitext/wiki.test.raw", "--shard",
                           "0/60", "--ctx", "256", "-t", "1", "--out", dir + "/wiki.stats"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* criterion : {"paper", "ratio", "massive"}) {
        const std::string out = dir + "/" + criterion + ".json";
        r = test::run_critdim({"find", "--domain", dir + "/math.stats", "--vs", dir + "/wiki.stats", "--criterion",
                               criterion, "--k", "5", "--out", out});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("math (50 docs, criterion " + std::string(criterion)), std::string::npos) << r.out;
        const auto j = nlohmann::json::parse(std::ifstream(out));
        EXPECT_EQ(j["format"], "critdim.critical");
        EXPECT_EQ(j["version"], 1);
        EXPECT_EQ(j["criterion"], criterion);
        EXPECT_EQ(j["parameters"]["k"], 5);
        EXPECT_EQ(j["model"]["n_embd"], 64);
        ASSERT_EQ(j["domains"].size(), 1u);
        EXPECT_LE(j["domains"][0]["dims"].size(), 5u);
        if (std::string(criterion) == "ratio") {
            ASSERT_EQ(j["domains"][0]["dims"].size(), 5u);
            EXPECT_GT(j["domains"][0]["dims"][0]["scores"]["ratio"].get<double>(), 1.0);
        }
    }
}

}  // namespace
}  // namespace critdim::analysis
