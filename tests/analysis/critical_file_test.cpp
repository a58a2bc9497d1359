// The one critical.json reader: fields read back, and every refusal names the file and field.
#include <gtest/gtest.h>

#include "critdim/analysis.hpp"

namespace {

using critdim::Error;
using critdim::ErrorKind;
using critdim::analysis::parse_critical;

void expect_refused(const std::string& text, ErrorKind kind, const std::string& message, int64_t n_embd = 0) {
    try {
        parse_critical(text, "c.json", n_embd);
        FAIL() << "accepted: " << text;
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        EXPECT_NE(std::string(e.what()).find("c.json"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
}

TEST(CriticalFile, ReadsDomainsDimsAndProvenance) {
    const auto f = parse_critical(R"({"format": "critdim.critical", "version": 1,
        "model": {"hash": "abc"}, "parameters": {"point": "resid_post"},
        "domains": [{"name": "math", "dims": [{"dim": 7, "rank": 1, "score": 0.5, "layers": [2, 3]},
                                              {"dim": 1, "rank": 2}]},
                    {"dims": []}]})",
                                  "c.json", 8);
    EXPECT_EQ(f.version, 1);
    EXPECT_EQ(f.model_hash, "abc");
    EXPECT_EQ(f.point, "resid_post");
    ASSERT_EQ(f.domains.size(), 2u);
    EXPECT_EQ(f.domains[0].name, "math");
    EXPECT_EQ(f.domains[0].dim_ids(), (std::vector<int64_t>{7, 1}));
    EXPECT_EQ(f.domains[0].dims[0].layers, (std::vector<int>{2, 3}));
    EXPECT_DOUBLE_EQ(f.domains[0].dims[0].score, 0.5);
    EXPECT_EQ(f.domains[0].dims[1].rank, 2);
    EXPECT_EQ(f.domains[1].name, "domain 1");
}

TEST(CriticalFile, RefusalsNameTheField) {
    expect_refused("{", ErrorKind::input, "not valid JSON");
    expect_refused(R"({"format": "other", "domains": []})", ErrorKind::input, "not a critical.json file");
    expect_refused(R"({"format": "critdim.critical"})", ErrorKind::input, "not a critical.json file");
    expect_refused(R"({"format": "critdim.critical", "domains": [{"dims": 3}]})", ErrorKind::input,
                   "domains[0].dims: expected a list");
    expect_refused(R"({"format": "critdim.critical", "domains": [{"name": 4, "dims": []}]})", ErrorKind::input,
                   "domains[0].name: expected a string");
    expect_refused(R"({"format": "critdim.critical", "domains": [{"dims": [{"dim": "x"}]}]})", ErrorKind::input,
                   "domains[0].dims[0].dim: expected an integer");
    expect_refused(R"({"format": "critdim.critical", "domains": [{"dims": [{"dim": 1, "layers": 2}]}]})",
                   ErrorKind::input, "domains[0].dims[0].layers: expected a list of blocks");
    expect_refused(R"({"format": "critdim.critical", "domains": [{"dims": [{"dim": 9}]}]})", ErrorKind::mismatch,
                   "domains[0].dims[0].dim: 9 is outside the model's 4 dimensions", 4);
}

}  // namespace
