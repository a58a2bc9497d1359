// critdim judge --completions FILE [--rule NAME|FILE] [--json]: the refusal judge applied to a
// file of completions; prints the refusal and attack success rates (and, where the file stores
// labels, how many the judge reproduces).
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/eval.hpp"

namespace critdim::cli {

void register_judge(CLI::App& app) {
    auto* cmd = app.add_subcommand("judge", "refusal judge (substring lists) over a JSON file of completions");
    static std::string file, rule = eval::kDefaultRefusalRule;
    static bool json = false;
    cmd->add_option("--completions", file, "JSON list of completions, or an object with a \"completions\" list")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--rule", rule,
                    "refusal list: refusal_direction_jbb12, llm_attacks_gcg29, jailbreakbench_string13, or a JSON file")
        ->capture_default_str();
    cmd->add_flag("--json", json, "machine-readable result, with every verdict");
    cmd->callback([] {
        const eval::RefusalJudge judge(eval::refusal_rule(rule));
        const eval::JudgeSummary s = eval::judge_completions(eval::read_completions(file), judge);
        if (json) {
            std::printf("%s\n", eval::judge_summary_json(s, file).c_str());
            return;
        }
        std::printf("rule %s (%s): %lld completions, %lld refused\n", s.rule.c_str(),
                    judge.rule().case_sensitive ? "case-sensitive" : "case-insensitive", static_cast<long long>(s.n),
                    static_cast<long long>(s.n_refused));
        std::printf("refusal rate %.4f, attack success rate %.4f\n", s.refusal_rate, s.attack_success_rate);
        if (s.per_category.size() > 1)
            for (const auto& [name, nc] : s.per_category)
                std::printf("  %-32s %4lld  attack success %.4f\n", name.c_str(), static_cast<long long>(nc.first),
                            static_cast<double>(nc.second) / static_cast<double>(nc.first));
        if (s.n_labelled > 0) {
            std::printf("stored labels reproduced: %lld of %lld\n", static_cast<long long>(s.n_agree),
                        static_cast<long long>(s.n_labelled));
            for (const std::string& d : s.disagreements) std::printf("  %s\n", d.c_str());
        }
    });
}

}  // namespace critdim::cli
