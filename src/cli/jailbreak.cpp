// critdim jailbreak MODEL --harmful FILE [--harmless FILE] [--prompts N] [--max-tokens N]
// [--steer plan.json]: greedy completions of instruction sets rendered with the chat template,
// judged by a refusal list. Prints the attack success rate (harmful) and the over-refusal
// (harmless); --out writes every completion with its verdict.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/steer_options.hpp"
#include "critdim/eval.hpp"

namespace critdim::cli {

void register_jailbreak(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("jailbreak", "attack success rate on harmful instructions, over-refusal on harmless");
    static std::string path, harmful, harmless, rule = eval::kDefaultRefusalRule, out;
    static int64_t n_prompts = 0;
    static eval::GenerateOptions go;
    static bool no_chat = false, json = false;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("--harmful", harmful, "harmful instructions: JSON list of {instruction} or CSV (AdvBench goal)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--harmless", harmless, "harmless instructions (over-refusal)")->check(CLI::ExistingFile);
    cmd->add_option("--prompts", n_prompts, "the first N instructions of each set (0: all)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--max-tokens", go.max_tokens, "new tokens per prompt (greedy)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 16));
    cmd->add_option("--ctx", go.n_ctx, "context size (default: the training context)");
    cmd->add_option("--seqs", go.n_seq, "prompts generated together")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    cmd->add_option("--rule", rule, "refusal list (built-in name or JSON file)")->capture_default_str();
    cmd->add_flag("--no-chat", no_chat,
                  "the instruction as plain text, not a chat turn (default: chat when the model has a template)");
    cmd->add_option("--chat-template", go.chat_template, "a built-in chat template instead of the model's");
    cmd->add_option("--system", go.system, "a system turn");
    cmd->add_option("--out", out, "write every completion and its verdict (JSON, readable by `judge`)");
    cmd->add_flag("--json", json, "machine-readable result");
    add_threads_option(cmd, go.n_threads);
    SteerOptions& steer_options = add_steer_options(cmd);
    cmd->callback([&steer_options] {
        const eval::RefusalJudge judge(eval::refusal_rule(rule));
        auto load = [](const std::string& f) {
            std::vector<eval::Instruction> v = eval::read_instructions(f);
            if (n_prompts > 0 && static_cast<size_t>(n_prompts) < v.size()) v.resize(static_cast<size_t>(n_prompts));
            return v;
        };
        const std::vector<eval::Instruction> harm = load(harmful);
        const std::vector<eval::Instruction> safe =
            harmless.empty() ? std::vector<eval::Instruction>{} : load(harmless);
        auto m = model::Model::load(path);
        auto tok = tokenizer::Tokenizer::from_gguf(m->file());
        go.chat = !no_chat && (!go.chat_template.empty() || !tok->chat_template().empty());
        if (!no_chat && !go.chat)
            log("critdim: note: " + path +
                " has no chat template; instructions are given as plain text (--chat-template NAME to use one)");
        go.progress = !json;
        eval::Generator gen(*m, *tok, go);
        const steer::Steering steering = apply_steering(steer_options, gen.context());
        const eval::JailbreakResult rh = eval::run_jailbreak(gen, harm, judge);
        eval::JailbreakResult rs;
        if (!safe.empty()) rs = eval::run_jailbreak(gen, safe, judge);
        if (!out.empty()) {
            nlohmann::json o = nlohmann::json::parse(eval::jailbreak_json(rh));
            if (!safe.empty()) o["harmless"] = nlohmann::json::parse(eval::jailbreak_json(rs));
            write_file_atomic(out, o.dump(2) + "\n");
        }
        if (gen.n_truncated() > 0)
            log("critdim: warning: " + std::to_string(gen.n_truncated()) +
                " prompts were cut from the left to fit the context");
        if (json) {
            nlohmann::json j = {{"format", "critdim-jailbreak"},
                                {"version", 1},
                                {"model", path},
                                {"rule", judge.rule().name},
                                {"chat", go.chat},
                                {"max_tokens", go.max_tokens},
                                {"steer", steer_options.plans},
                                {"harmful",
                                 {{"file", harmful},
                                  {"n", rh.n},
                                  {"refused", rh.n_refused},
                                  {"attack_success_rate", rh.attack_success_rate}}}};
            if (!safe.empty())
                j["harmless"] = {
                    {"file", harmless}, {"n", rs.n}, {"refused", rs.n_refused}, {"over_refusal_rate", rs.refusal_rate}};
            std::printf("%s\n", j.dump(2).c_str());
            return;
        }
        std::printf("rule %s, %lld new tokens, chat %s\n", judge.rule().name.c_str(),
                    static_cast<long long>(go.max_tokens), go.chat ? "on" : "off");
        std::printf("harmful  %5lld prompts, %5lld refused, attack success rate %.4f\n", static_cast<long long>(rh.n),
                    static_cast<long long>(rh.n_refused), rh.attack_success_rate);
        if (!safe.empty())
            std::printf("harmless %5lld prompts, %5lld refused, over-refusal rate   %.4f\n",
                        static_cast<long long>(rs.n), static_cast<long long>(rs.n_refused), rs.refusal_rate);
    });
}

}  // namespace critdim::cli
