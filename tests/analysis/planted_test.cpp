// The planted world: on synthetic models with known dimensions (critdim.plant.*), `find`
// returns exactly the planted detectors and the planted massive dimension at the first token.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"
#include "critdim/gguf.hpp"
#include "critdim/model.hpp"
#include "test_util.hpp"

namespace critdim::analysis {
namespace {

std::string write_lines(const std::string& path, const std::vector<std::string>& lines, const std::string& prefix) {
    std::ofstream f(path);
    for (const auto& l : lines) f << prefix << l << "\n";
    return path;
}

void check_planted_world(const std::string& arch, uint64_t seed) {
    SCOPED_TRACE(arch + " seed " + std::to_string(seed));
    const std::string dir = test::temp_dir("plant-" + arch);
    const std::string model_path = dir + "/m.gguf";
    model::SynthOptions so;
    so.arch = arch;
    so.config = model::synth_config("tiny");
    so.seed = seed;
    so.plant = "default";
    model::synthesize(so, model_path);
    const auto f = gguf::File::open(model_path);
    const int64_t digit_dim = f->get_int_array("critdim.plant.digit_dims").at(0);
    const int64_t domain_dim = f->get_int_array("critdim.plant.domain_dims").at(0);
    const int64_t massive_dim = f->get_int_array("critdim.plant.massive_dims").at(0);
    const std::vector<std::string> words = f->get_string_array("critdim.plant.domain_words");
    ASSERT_EQ(words.size(), 5u);

    // Vocabularies that add no BOS get the planted first token written out.
    const bool adds_bos = f->get_bool("tokenizer.ggml.add_bos_token", false);
    const std::string first = adds_bos ? "" : "<|endoftext|>";
    const std::string digits = write_lines(dir + "/digits.txt",
        {"12 + 30 = 42", "7 * 8 = 56 and 9 - 3 = 6", "the sum 45 + 17 = 62", "100 / 4 = 25", "3 * 3 = 9", "81 - 9 = 72"}, first);
    const std::string w = " " + words[0] + " " + words[1] + " " + words[2] + " " + words[3] + " " + words[4];
    const std::string domain = write_lines(dir + "/domain.txt",
        {"my" + w, "the" + w + " day", w + " and" + w, "they" + w, "a" + w + " was", "he saw" + w}, first);
    const std::string plain = write_lines(dir + "/plain.txt",
        {"once upon a time there was a girl", "she went to the house", "the house was very old", "they were there that day",
         "he said what you want", "the story of the family"}, first);

    ScanOptions o;
    o.policy = PositionPolicy::content;
    o.n_threads = 1;
    o.parse_special = true;
    std::vector<std::pair<std::string, Stats>> stats;
    for (const std::string& c : {digits, domain, plain}) {
        scan(model_path, {CorpusSpec::parse(c)}, o, c + ".stats");
        stats.emplace_back(c + ".stats", Stats::read(c + ".stats"));
    }

    // paper: exactly the planted detector of each domain at k = 1 (one planted per domain).
    FindOptions fo;
    fo.k = 1;
    const auto r = find_critical({stats[0], stats[1]}, {stats[2]}, fo);
    ASSERT_EQ(r.size(), 2u);
    ASSERT_EQ(r[0].dims.size(), 1u);
    EXPECT_EQ(r[0].dims[0].dim, digit_dim);
    ASSERT_EQ(r[1].dims.size(), 1u);
    EXPECT_EQ(r[1].dims[0].dim, domain_dim);

    // massive: the planted dimension, and only at the first token.
    fo.criterion = Criterion::massive;
    for (const auto& s : stats) {
        const auto m = find_critical({s}, {}, fo);
        ASSERT_EQ(m[0].n_candidates, 1) << s.first;
        EXPECT_EQ(m[0].dims[0].dim, massive_dim);
        EXPECT_GT(m[0].dims[0].massive_tokens, 0);
        EXPECT_EQ(m[0].dims[0].massive_first, m[0].dims[0].massive_tokens);
    }
}

TEST(FindPlanted, PaperAndMassiveRecoverThePlantedDimensions) {
    for (const char* arch : {"llama", "qwen2", "gemma2"})
        for (uint64_t seed : {1u, 2u}) check_planted_world(arch, seed);
}

TEST(FindPlanted, UnknownPlantIsAUsageError) {
    const auto r = test::run_critdim({"synth", "--plant", "other", "--out", test::temp_dir("plant") + "/x.gguf"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--plant: 'other'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace critdim::analysis

namespace critdim::analysis {
namespace {

// explain lists the planted triggers as the top tokens, in a self-contained HTML and its JSON.
TEST(FindPlanted, ExplainListsThePlantedTriggers) {
    const std::string dir = test::temp_dir("explain");
    const std::string m = dir + "/m.gguf";
    ASSERT_EQ(test::run_critdim({"synth", "--plant", "default", "--seed", "3", "--out", m}).exit_code, 0);
    const auto f = gguf::File::open(m);
    const int64_t digit_dim = f->get_int_array("critdim.plant.digit_dims").at(0);
    const int64_t domain_dim = f->get_int_array("critdim.plant.domain_dims").at(0);
    const std::vector<std::string> words = f->get_string_array("critdim.plant.domain_words");
    const std::string w = " " + words[0] + " " + words[1] + " " + words[2] + " " + words[3] + " " + words[4];
    const std::string digits = write_lines(dir + "/digits.txt", {"12 + 30 = 42", "7 * 8 = 56", "100 / 4 = 25"}, "");
    const std::string domain = write_lines(dir + "/domain.txt", {"my" + w, "the" + w, "he saw" + w}, "");
    const std::string plain = write_lines(dir + "/plain.txt", {"once upon a time", "she went to the house", "the old story"}, "");
    for (const std::string& c : {digits, domain, plain})
        ASSERT_EQ(test::run_critdim({"scan", m, "--corpus", c, "--policy", "content", "-t", "1", "--out", c + ".stats"}).exit_code, 0);
    auto r = test::run_critdim({"find", "--domain", digits + ".stats", "--domain", domain + ".stats", "--vs", plain + ".stats",
                                "--k", "1", "--out", dir + "/crit.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = test::run_critdim({"explain", m, "--dims", dir + "/crit.json", "--corpus", digits, "--corpus", domain, "--corpus",
                           plain, "--top", "5", "-t", "1", "--out", dir + "/report.html"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(std::ifstream(dir + "/report.json"));
    EXPECT_EQ(j["format"], "critdim.explain");
    ASSERT_EQ(j["dims"].size(), 2u);
    for (const auto& d : j["dims"]) {
        ASSERT_EQ(d["top_tokens"].size(), 5u);
        for (const auto& t : d["top_tokens"]) {
            std::string piece = t["piece"];
            if (!piece.empty() && piece[0] == ' ') piece.erase(0, 1);
            if (d["dim"] == digit_dim)
                EXPECT_EQ(piece.find_first_not_of("0123456789+-*/="), std::string::npos) << piece;
            else if (d["dim"] == domain_dim)
                EXPECT_NE(std::find(words.begin(), words.end(), piece), words.end()) << piece;
            else
                ADD_FAILURE() << "unexpected dim " << d["dim"];
        }
    }
    std::ifstream html(dir + "/report.html");
    const std::string text((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("<svg"), std::string::npos);
    EXPECT_EQ(text.find("<script"), std::string::npos);
    EXPECT_EQ(text.find("<link"), std::string::npos);
}

}  // namespace
}  // namespace critdim::analysis
