#include "scale/scale_test_util.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "critdim/eval.hpp"
#include "critdim/model.hpp"
#include "test_util.hpp"

namespace critdim::test {

std::string scale_model() {
    static const std::string path = [] {
        const std::string p = temp_dir("scale-model") + "/tiny.gguf";
        model::SynthOptions o;
        o.config = model::synth_config("tiny");
        o.seed = 11;
        model::synthesize(o, p);
        return p;
    }();
    return path;
}

std::string scale_corpus(int n_lines) {
    static std::map<int, std::string> made;
    auto& path = made[n_lines];
    if (path.empty()) {
        path = temp_dir("scale-corpus") + "/docs.txt";
        std::ofstream f(path);
        const char* words[] = {"the river",  "12 + 30 = 42",      "a quiet forest",   "seven times eight",
                               "birds sing", "the cell membrane", "once upon a time", "x"};
        for (int i = 0; i < n_lines; ++i)
            f << "Line " << i << ": " << words[i % 8] << " and " << words[(i * 5 + 3) % 8] << ".\n";
    }
    return path;
}

std::vector<std::string> scale_scan_args(int n_lines) {
    return {scale_model(), "--corpus", scale_corpus(n_lines), "--policy", "all", "--batch", "64", "-t", "1"};
}

std::vector<std::string> reduced_reproduce_args() {
    static const std::string rule = [] {
        const std::string p = temp_dir("scale-rule") + "/dot.json";
        std::ofstream(p) << R"({"name": "dot", "strings": ["."], "case_sensitive": false})";
        return p;
    }();
    return {shared_dir() + "/golden/models/stories260K-f32.gguf",
            "--data",
            shared_dir() + "/data",
            "--subjects",
            "astronomy,anatomy,world_religions",
            "--questions",
            "4",
            "--advbench",
            "6",
            "--advbench-chunk",
            "2",
            "--max-tokens",
            "6",
            "--ppl-chunks",
            "1",
            "--ctx",
            "128",
            "--alphas",
            "1,4",
            "-k",
            "2",
            "--gap",
            "0",
            "--ablate-top",
            "1",
            "--ranks",
            "1,10",
            "--rule",
            rule,
            "-t",
            "1"};
}

const nlohmann::json& reduced_reproduce_reference() {
    static const nlohmann::json results = [] {
        const std::string out = temp_dir("reproduce-one") + "/out";
        std::vector<std::string> args = {"reproduce"};
        for (const auto& a : reduced_reproduce_args()) args.push_back(a);
        args.insert(args.end(), {"--out", out});
        const RunResult r = run_critdim(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return nlohmann::json::parse(read_text_file(out + "/results.json"));
    }();
    return results;
}

namespace {

// The `code` spans of the list between the timing-fields markers of docs/eval.md.
std::vector<std::string> documented_timing_fields() {
    const std::string doc = read_text_file(source_dir() + "/docs/eval.md");
    const size_t a = doc.find("<!-- timing-fields -->"), b = doc.find("<!-- /timing-fields -->");
    EXPECT_NE(a, std::string::npos) << "docs/eval.md has no timing-fields list";
    std::vector<std::string> fields;
    std::istringstream lines(doc.substr(a, b - a));
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("- `", 0) != 0) continue;
        fields.push_back(line.substr(3, line.find('`', 3) - 3));
    }
    return fields;
}

void expect_same(const nlohmann::json& a, const nlohmann::json& b, const std::string& path) {
    if (a.type() != b.type() || a.size() != b.size() || (!a.is_structured() && a != b)) {
        ADD_FAILURE() << path << ": one process " << a.dump().substr(0, 200) << ", merged " << b.dump().substr(0, 200);
        return;
    }
    if (a.is_object()) {
        for (const auto& [key, value] : a.items()) {
            if (!b.contains(key)) {
                ADD_FAILURE() << path << "." << key << ": missing in the merged result";
                continue;
            }
            expect_same(value, b[key], path + "." + key);
        }
    } else if (a.is_array()) {
        for (size_t i = 0; i < a.size(); ++i) expect_same(a[i], b[i], path + "[" + std::to_string(i) + "]");
    }
}

}  // namespace

void expect_same_results(const nlohmann::json& one_process, const nlohmann::json& merged) {
    const std::vector<std::string> timing = documented_timing_fields();
    EXPECT_EQ(timing, eval::reproduce_timing_fields());
    nlohmann::json a = one_process, b = merged;
    for (const std::string& key : timing) {
        EXPECT_TRUE(a.contains(key) && b.contains(key)) << key;
        a.erase(key), b.erase(key);
    }
    expect_same(a, b, "results");
}

}  // namespace critdim::test
