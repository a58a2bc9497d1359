// critdim find --domain A.stats --vs B.stats ... --criterion paper|massive|ratio --k K
// --out critical.json: the domain-critical dimensions, as JSON and as a table on stdout.
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/analysis.hpp"

namespace critdim::cli {

void register_find(CLI::App& app) {
    auto* cmd = app.add_subcommand("find", "find the domain-critical dimensions from stats files");
    static std::vector<std::string> domain_args, vs_args;
    static std::string out, criterion = "paper", gap_sign = "abs", rest = "pooled", layer_pool = "max";
    static analysis::FindOptions o;
    cmd->add_option("--domain", domain_args, "stats file of a domain ([NAME=]FILE), repeatable: each against all others")
        ->required();
    cmd->add_option("--vs", vs_args, "stats file of a contrasting corpus ([NAME=]FILE), repeatable");
    cmd->add_option("--criterion", criterion, "paper, massive or ratio")->capture_default_str();
    cmd->add_option("--k", o.k, "dimensions per domain")->capture_default_str();
    cmd->add_option("--gap", o.gap, "paper: activity frequency gap threshold")->capture_default_str();
    cmd->add_option("--gap-sign", gap_sign, "paper: abs (either direction) or positive (more active in the domain)")
        ->capture_default_str();
    cmd->add_option("--rest", rest, "paper: pooled (domain vs all others together) or pairwise (vs each)")
        ->capture_default_str();
    cmd->add_option("--point", o.point, "hook point whose layers are used")->capture_default_str();
    cmd->add_option("--layer-pool", layer_pool, "magnitude and ratio over layers: max or mean")->capture_default_str();
    cmd->add_option("--min-ratio", o.min_ratio, "ratio: list the layers where the ratio is at least this")
        ->capture_default_str();
    cmd->add_option("--out", out, "critical.json to write");
    cmd->callback([] {
        o.criterion = analysis::parse_criterion(criterion);
        if (gap_sign != "abs" && gap_sign != "positive") throw_usage("--gap-sign: '" + gap_sign + "' is not abs or positive");
        if (rest != "pooled" && rest != "pairwise") throw_usage("--rest: '" + rest + "' is not pooled or pairwise");
        if (layer_pool != "max" && layer_pool != "mean") throw_usage("--layer-pool: '" + layer_pool + "' is not max or mean");
        o.gap_positive = gap_sign == "positive";
        o.pairwise = rest == "pairwise";
        o.layer_mean = layer_pool == "mean";
        std::vector<std::pair<std::string, analysis::Stats>> domains, others;
        for (const auto& a : domain_args) domains.push_back(analysis::read_domain_stats(a));
        for (const auto& a : vs_args) others.push_back(analysis::read_domain_stats(a));
        const auto results = analysis::find_critical(domains, others, o);
        if (!out.empty()) write_file_atomic(out, analysis::critical_json(results, o, domains.front().second));
        std::fputs(analysis::critical_table(results, o).c_str(), stdout);
    });
}

}  // namespace critdim::cli
