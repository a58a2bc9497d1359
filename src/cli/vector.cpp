// critdim vector --pos A.stats --neg B.stats [--dims critical.json] --out plan.json: a steering
// plan from two scans, whole-vector or masked to the critical dimensions (docs/steering.md).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/steer.hpp"

namespace critdim::cli {

namespace {

// "5" or "3..7" (inclusive).
std::pair<int, int> parse_layer_range(const std::string& text) {
    try {
        const size_t dots = text.find("..");
        size_t used = 0;
        if (dots == std::string::npos) {
            const int a = std::stoi(text, &used);
            if (used == text.size() && a >= 0) return {a, a};
        } else {
            const int a = std::stoi(text.substr(0, dots), &used);
            size_t used_b = 0;
            const std::string rest = text.substr(dots + 2);
            const int b = std::stoi(rest, &used_b);
            if (used == dots && used_b == rest.size() && a >= 0 && b >= a) return {a, b};
        }
    } catch (const std::exception&) {
    }
    throw_usage("--layers: '" + text + "' is not a layer or a range A..B (0-based, inclusive)");
}

steer::PositionPolicy parse_positions_option(const std::string& text) {
    using steer::Positions;
    if (text == "all") return {Positions::all, 0};
    if (text == "prompt") return {Positions::prompt, 0};
    if (text == "generated") return {Positions::generated, 0};
    if (text == "skip_bos") return {Positions::skip_bos, 0};
    if (text.rfind("from:", 0) == 0) {
        try {
            size_t used = 0;
            const long long n = std::stoll(text.substr(5), &used);
            if (used == text.size() - 5 && n >= 0) return {Positions::from, n};
        } catch (const std::exception&) {
        }
    }
    throw_usage("--positions: '" + text + "' is not all, prompt, generated, skip_bos or from:N");
}

}  // namespace

void register_vector(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("vector", "a steering plan from two scans: difference of means or PCA, whole or masked");
    static steer::VectorOptions o;
    static std::string out, layers, method = "mean", norm = "match-whole", positions = "all";
    static bool json = false;
    cmd->add_option("--pos", o.pos, "stats file of the corpus to steer toward")->required()->check(CLI::ExistingFile);
    cmd->add_option("--neg", o.neg, "stats file of the corpus to steer away from")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--dims", o.dims_path,
                    "critical.json: mask the vector to its dimensions (Critical Dimension Steering)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--domain", o.domain, "the domain of --dims (default: the only one, or --pos's name)");
    cmd->add_option("--dim", o.dims, "mask to these dimensions (repeatable) instead of --dims");
    cmd->add_option("--layers", layers, "layer or range A..B, 0-based inclusive (default: every layer)");
    cmd->add_option("--point", o.point, "hook point of the statistics and the plan")->capture_default_str();
    cmd->add_option("--method", method, "mean (difference of means) or pca (needs scan --keep-rows)")
        ->capture_default_str();
    cmd->add_flag("--center", o.center, "pca: subtract the mean difference first (repeng) instead of not (llama.cpp)");
    cmd->add_option("--norm", norm, "match-whole (masked vector at the whole vector's norm), unit or none")
        ->capture_default_str();
    cmd->add_option("--alpha", o.alpha, "the plan's alpha")->capture_default_str();
    cmd->add_option("--positions", positions, "all, prompt, generated, skip_bos or from:N")->capture_default_str();
    cmd->add_option("--out", out, "steering plan to write (JSON)")->required();
    cmd->add_flag("--json", json, "print the per-layer norms as JSON");
    cmd->callback([] {
        if (!layers.empty()) std::tie(o.layer_first, o.layer_last) = parse_layer_range(layers);
        o.method = steer::parse_vector_method(method);
        o.norm = steer::parse_vector_norm(norm);
        if (!o.dims_path.empty() && !o.dims.empty()) throw_usage("--dims and --dim exclude each other");
        o.positions = parse_positions_option(positions);
        std::vector<steer::VectorLayer> report;
        steer::Plan plan = steer::build_vector_plan(o, &report);
        plan.source = out;
        steer::save_plan(plan, out);
        if (json) {
            nlohmann::json j = nlohmann::json::array();
            for (const auto& r : report)
                j.push_back({{"layer", r.layer},
                             {"whole_norm", r.whole_norm},
                             {"masked_norm", r.masked_norm},
                             {"scale", r.scale}});
            std::printf("%s\n",
                        nlohmann::json{{"plan", out}, {"comment", plan.comment}, {"layers", j}}.dump(2).c_str());
        } else {
            std::printf("%s: %s, layers %d..%d\n", out.c_str(), plan.comment.c_str(), report.front().layer,
                        report.back().layer);
        }
    });
}

}  // namespace critdim::cli
