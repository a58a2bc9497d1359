// reproduce on stories260K at CI size: every documented field of results.json, a resumed rerun
// that skips every step, and the HTML report rendered by headless Chromium without script errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "critdim/eval.hpp"
#include "eval/eval_test_util.hpp"
#include "test_util.hpp"

namespace critdim::eval {
namespace {

namespace fs = std::filesystem;

// The documented field paths: the first column of the table between the results-fields markers.
std::vector<std::string> documented_fields() {
    const std::string doc = read_text_file(critdim::test::source_dir() + "/docs/eval.md");
    const size_t a = doc.find("<!-- results-fields -->"), b = doc.find("<!-- /results-fields -->");
    EXPECT_NE(a, std::string::npos);
    std::vector<std::string> fields;
    std::istringstream lines(doc.substr(a, b - a));
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("| `", 0) != 0) continue;
        const std::string first = line.substr(2, line.find(" |", 2) - 2);
        // Every `code` span of the first column names one field.
        for (size_t open = first.find('`'); open != std::string::npos;) {
            const size_t close = first.find('`', open + 1);
            if (close == std::string::npos) break;
            if (close > open + 1) fields.push_back(first.substr(open + 1, close - open - 1));
            open = first.find('`', close + 1);
        }
    }
    return fields;
}

// "a.b[].c": every element of the array a.b has c.
bool has_path(const nlohmann::json& j, const std::string& path, std::string& why) {
    const size_t dot = path.find('.');
    std::string head = path.substr(0, dot);
    const std::string rest = dot == std::string::npos ? "" : path.substr(dot + 1);
    const bool each = head.size() > 2 && head.ends_with("[]");
    if (each) head.resize(head.size() - 2);
    if (!j.is_object() || !j.contains(head)) return why = "missing '" + head + "'", false;
    const nlohmann::json& v = j[head];
    if (rest.empty()) return true;
    if (v.is_null()) return true;  // a skipped part
    if (each) {
        if (!v.is_array() || v.empty()) return why = "'" + head + "' is not a non-empty list", false;
        for (const auto& e : v)
            if (!has_path(e, rest, why)) return false;
        return true;
    }
    return has_path(v, rest, why);
}

// 5 subjects x 6 questions, 8 AdvBench prompts, a sweep of 2 k x 2 layer choices: the CI-sized
// protocol (well under a minute on 2 cores).
std::vector<std::string> ci_args(const std::string& out) {
    return {"reproduce",    test::stories(),
            "--data",       test::data_dir(),
            "--out",        out,
            "--subjects",   "astronomy,anatomy,college_biology,high_school_mathematics,world_religions",
            "--questions",  "6",
            "--advbench",   "8",
            "--max-tokens", "12",
            "--ppl-chunks", "2",
            "--ctx",        "128",
            "--alphas",     "1,4",
            "-k",           "2,1",
            "--layers",     "middle,all",
            "--gap",        "0",
            "--ablate-top", "1",
            "--ranks",      "1,10,100",
            "-t",           "2"};
}

struct CiRun {
    std::string out;
    nlohmann::json results;
};

const CiRun& ci_run() {
    static const CiRun run = [] {
        CiRun r;
        r.out = critdim::test::temp_dir("reproduce") + "/out";
        const auto res = critdim::test::run_critdim(ci_args(r.out));
        EXPECT_EQ(res.exit_code, 0) << res.err;
        EXPECT_NE(res.err.find("estimated run time"), std::string::npos) << res.err;
        r.results = nlohmann::json::parse(read_text_file(r.out + "/results.json"));
        return r;
    }();
    return run;
}

TEST(EvalReproduce, CiSizedRunHasEveryDocumentedField) {
    const CiRun& r = ci_run();
    const std::vector<std::string> fields = documented_fields();
    EXPECT_GT(fields.size(), 60u);
    for (const std::string& f : fields) {
        std::string why;
        EXPECT_TRUE(has_path(r.results, f, why)) << f << ": " << why;
    }
    EXPECT_FALSE(r.results["jailbreak"].is_null());
    EXPECT_FALSE(r.results["coherence"].is_null());
    EXPECT_EQ(r.results["mmlu"]["subjects"].size(), 5u);
    EXPECT_EQ(r.results["settings"]["n_identify"], 15);
    EXPECT_EQ(r.results["settings"]["n_evaluate"], 15);
    EXPECT_EQ(r.results["jailbreak"]["n_evaluate"], 8);
    EXPECT_EQ(r.results["mmlu"]["scoring"], "multi-token");
    const auto& w = r.results["mmlu"]["wins"];
    EXPECT_EQ(w["cds"].get<int>() + w["whole"].get<int>() + w["ties"].get<int>(), 5);
    // n_embd 64: Rank-100 does not exist
    EXPECT_EQ(r.results["ablation"]["rank_table"].size(), 2u);
    EXPECT_TRUE(fs::exists(r.out + "/critical.json"));
    // --gap 0: every subject has critical dims, so the CDS path runs (stories260K's last-token
    // activity is the same in every subject: no dim passes the paper's 0.30 gap)
    for (const auto& s : r.results["mmlu"]["subjects"]) EXPECT_EQ(s["critical_dims"].size(), 2u);
    EXPECT_EQ(r.results["settings"]["k"], nlohmann::json({2, 1}));
    EXPECT_EQ(r.results["settings"]["layers"], nlohmann::json({{2, 2}, {1, 4}}));  // stories260K: 5 layers
    EXPECT_EQ(r.results["jailbreak"]["k"], 2);
    EXPECT_EQ(r.results["jailbreak"]["layers"], nlohmann::json({2, 2}));
    EXPECT_TRUE(fs::exists(r.out + "/critical.k1.json"));
    EXPECT_TRUE(fs::exists(r.out + "/steps/jailbreak.cds.k2.L2-2.identify.a4.p0-8.json"));
    EXPECT_TRUE(fs::exists(r.out + "/steps/mmlu_baseline.anatomy.json"));
}

// Every (k, layers) combination is run, and each method's choice is the best on the
// identification split (ties to the smaller |alpha|), whatever the evaluation split says.
TEST(EvalReproduce, SweepChoosesOnTheIdentificationSplit) {
    const CiRun& r = ci_run();
    const auto& mmlu = r.results["mmlu"];
    ASSERT_EQ(mmlu["sweep"].size(), 6u);  // whole x 2 layer choices, CDS x 2 k x 2 layer choices
    int chosen_whole = 0, chosen_cds = 0;
    for (const auto& c : mmlu["sweep"]) (c["method"] == "cds" ? chosen_cds : chosen_whole) += c["chosen"].get<int>();
    EXPECT_EQ(chosen_whole, 5);
    EXPECT_EQ(chosen_cds, 5);
    for (const auto& s : mmlu["subjects"]) {
        ASSERT_EQ(s["sweep"].size(), 6u) << s["subject"];
        EXPECT_EQ(s["critical_dims_by_k"]["1"].size(), 1u);
        EXPECT_EQ(s["critical_dims_by_k"]["2"], s["critical_dims"]);
        for (const char* method : {"whole", "cds"}) {
            const auto& pick = s[method];
            int n_chosen = 0;
            for (const auto& e : s["sweep"]) {
                if (e["method"] != method) continue;
                EXPECT_LE(e["identify"].get<double>(), pick["identify"].get<double>() + 1e-12) << s["subject"];
                double at_alpha = -1;
                for (const auto& p : e["curve"])
                    if (p["alpha"] == e["alpha"]) at_alpha = p["accuracy"];
                EXPECT_DOUBLE_EQ(at_alpha, e["identify"].get<double>());
                if (e["chosen"].get<bool>()) {
                    ++n_chosen;
                    EXPECT_EQ(e["evaluate"], pick["evaluate"]);
                    EXPECT_EQ(e["alpha"], pick["alpha"]);
                    EXPECT_EQ(e["layers"], pick["layers"]);
                }
            }
            EXPECT_EQ(n_chosen, 1) << s["subject"] << " " << method;
        }
    }
    const std::string html = read_text_file(r.out + "/report.html");
    EXPECT_NE(html.find("id=\"sweep\""), std::string::npos);
}

TEST(EvalReproduce, RerunSkipsEveryStepAndRedoesAMissingOne) {
    const CiRun& r = ci_run();
    const std::vector<std::string> args = ci_args(r.out);
    auto res = critdim::test::run_critdim(args);
    ASSERT_EQ(res.exit_code, 0) << res.err;
    auto again = nlohmann::json::parse(read_text_file(r.out + "/results.json"));
    EXPECT_EQ(again["steps"]["run"], 0);
    EXPECT_EQ(again["mmlu"], r.results["mmlu"]);
    EXPECT_EQ(again["ablation"], r.results["ablation"]);
    fs::remove(r.out + "/steps/mmlu.anatomy.cds.k1.L1-4.json");
    res = critdim::test::run_critdim(args);
    ASSERT_EQ(res.exit_code, 0) << res.err;
    again = nlohmann::json::parse(read_text_file(r.out + "/results.json"));
    EXPECT_EQ(again["steps"]["run"], 1);
    EXPECT_EQ(again["mmlu"], r.results["mmlu"]);
}

TEST(EvalReproduce, ReportRendersInChromium) {
    const CiRun& r = ci_run();
    const std::string html = read_text_file(r.out + "/report.html");
    EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no fetched resource
    EXPECT_EQ(html.find("https://"), std::string::npos);
    const std::string profile = critdim::test::temp_dir("chromium");
    const std::string dom = profile + "/dom.html";
    const std::string cmd = "chromium --headless --no-sandbox --disable-gpu --user-data-dir=" + profile +
                            " --dump-dom file://" + fs::absolute(r.out + "/report.html").string() + " > " + dom +
                            " 2> " + profile + "/err.txt";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << read_text_file(profile + "/err.txt");
    const std::string out = read_text_file(dom);
    EXPECT_NE(out.find("data-rendered=\"4\""), std::string::npos) << out.substr(0, 400);
    EXPECT_EQ(out.find("data-js-error=\""), std::string::npos) << out.substr(0, 400);
    EXPECT_NE(out.find("<svg class=\"chart\""), std::string::npos);
    EXPECT_NE(out.find("id=\"subjects\""), std::string::npos);
}

TEST(EvalReproduce, BadOptionsAreUsageErrors) {
    auto res =
        critdim::test::run_critdim({"reproduce", test::stories(), "--data", test::data_dir(), "--out",
                                    critdim::test::temp_dir("rp") + "/o", "--subjects", "astronomy", "--estimate"});
    EXPECT_EQ(res.exit_code, 2);
    EXPECT_NE(res.err.find("at least 2 subjects"), std::string::npos) << res.err;
    res = critdim::test::run_critdim({"reproduce", test::stories(), "--data", test::data_dir(), "--out",
                                      critdim::test::temp_dir("rp") + "/o", "--subjects", "astronomy,anatomy",
                                      "--layers", "9"});
    EXPECT_EQ(res.exit_code, 2);
    EXPECT_NE(res.err.find("--layers: '9' is not middle, all or a layer 0..4"), std::string::npos) << res.err;
    // a layer choice naming the same blocks as another, and a repeated k, count once
    res = critdim::test::run_critdim({"reproduce", test::stories(), "--data", test::data_dir(), "--out",
                                      critdim::test::temp_dir("rp") + "/o", "--subjects", "astronomy,anatomy",
                                      "--questions", "4", "--no-jailbreak", "--no-reference", "-k", "3,3", "--layers",
                                      "middle,2", "--estimate"});
    EXPECT_EQ(res.exit_code, 0) << res.err;
    EXPECT_NE(res.err.find("1 k x 1 layer choices"), std::string::npos) << res.err;
}

}  // namespace
}  // namespace critdim::eval
