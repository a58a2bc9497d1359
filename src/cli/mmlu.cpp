// critdim mmlu MODEL --data DIR [--subjects a,b] [--questions N] [--chat] [--steer plan.json]:
// zero-shot MMLU accuracy per subject with 95 % Wilson intervals, scored as lm-eval-harness does.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/steer_options.hpp"
#include "critdim/eval.hpp"

namespace critdim::cli {

namespace {

nlohmann::json accuracy_json(const eval::Accuracy& a) {
    return {{"n", a.n}, {"correct", a.correct}, {"accuracy", a.acc}, {"ci95", {a.ci_low, a.ci_high}}};
}

}  // namespace

void register_mmlu(CLI::App& app) {
    auto* cmd = app.add_subcommand("mmlu", "zero-shot MMLU accuracy per subject (lm-eval log-likelihood scoring)");
    static std::string path, data;
    static std::vector<std::string> subjects;
    static int64_t questions = 0;
    static int64_t seed = -1;
    static eval::McqOptions mo;
    static bool json = false;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("--data", data, "MMLU folder (test/<subject>_test.csv) or a folder of subject CSVs")->required();
    cmd->add_option("--subjects", subjects, "subjects to run (default: every subject in the folder)")->delimiter(',');
    cmd->add_option("--questions", questions, "questions per subject (0: all): the first N, or a sample with --seed")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--seed", seed, "sample --questions N at random with this seed instead of taking the first N");
    cmd->add_option("--ctx", mo.n_ctx,
                    "context size (default: the training context); longer prompts are cut from the left");
    cmd->add_option("-b,--batch", mo.n_batch, "tokens per forward pass")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--seqs", mo.n_seq, "questions (sequences) per forward pass")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    cmd->add_flag("--chat", mo.chat, "render each prompt as a user turn of the chat template");
    cmd->add_option("--chat-template", mo.chat_template, "with --chat: a built-in template instead of the model's");
    cmd->add_option("--system", mo.system, "with --chat: a system turn");
    cmd->add_flag("--json", json, "machine-readable result");
    add_threads_option(cmd, mo.n_threads);
    SteerOptions& steer_options = add_steer_options(cmd);
    cmd->callback([&steer_options] {
        const std::vector<eval::McqQuestion> qs = eval::load_mmlu(data, subjects, questions, seed);
        auto m = model::Model::load(path);
        auto tok = tokenizer::Tokenizer::from_gguf(m->file());
        mo.progress = !json;
        eval::McqScorer scorer(*m, *tok, mo);
        const steer::Steering steering = apply_steering(steer_options, scorer.context());
        const auto t0 = std::chrono::steady_clock::now();
        scorer.prepare(qs);
        const std::vector<eval::McqScore> scores = scorer.score();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto per_subject = eval::accuracy_by_subject(qs, scores);
        int64_t correct = 0;
        for (size_t i = 0; i < qs.size(); ++i) correct += scores[i].predicted == qs[i].answer;
        const eval::Accuracy overall = eval::wilson(correct, static_cast<int64_t>(qs.size()));
        if (scorer.n_truncated() > 0)
            log("critdim: warning: " + std::to_string(scorer.n_truncated()) +
                " prompts were cut from the left to fit the context (--ctx)");
        if (json) {
            nlohmann::json subj = nlohmann::json::array();
            for (const auto& s : per_subject) {
                nlohmann::json e = accuracy_json(s.accuracy);
                e["subject"] = s.subject;
                subj.push_back(e);
            }
            nlohmann::json j = {{"format", "critdim-mmlu"},
                                {"version", 1},
                                {"model", path},
                                {"data", data},
                                {"scoring", scorer.scoring_case()},
                                {"letter_tokens", scorer.letter_pieces()},
                                {"chat", mo.chat},
                                {"steer", steer_options.plans},
                                {"n_truncated", scorer.n_truncated()},
                                {"forward_passes", scorer.n_forward()},
                                {"tokens", scorer.tokens_per_pass()},
                                {"seconds", seconds},
                                {"overall", accuracy_json(overall)},
                                {"subjects", subj}};
            std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
            return;
        }
        std::printf("scoring: %s (continuation tokens of \" A\": %zu)\n", scorer.scoring_case().c_str(),
                    scorer.letter_pieces().empty() ? size_t{0} : scorer.letter_pieces()[0].size());
        std::printf("%-40s %6s %8s  %s\n", "subject", "n", "accuracy", "95% CI");
        for (const auto& s : per_subject)
            std::printf("%-40s %6lld %8.4f  [%.4f, %.4f]\n", s.subject.c_str(), static_cast<long long>(s.accuracy.n),
                        s.accuracy.acc, s.accuracy.ci_low, s.accuracy.ci_high);
        std::printf("%-40s %6lld %8.4f  [%.4f, %.4f]\n", "overall", static_cast<long long>(overall.n), overall.acc,
                    overall.ci_low, overall.ci_high);
        std::fprintf(stderr, "%lld tokens in %lld forward passes, %.1f s\n",
                     static_cast<long long>(scorer.tokens_per_pass()), static_cast<long long>(scorer.n_forward()),
                     seconds);
    });
}

}  // namespace critdim::cli
