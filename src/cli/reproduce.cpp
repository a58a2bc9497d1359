// critdim reproduce MODEL --data DIR --out OUT: the paper's whole protocol (docs/eval.md), with
// options to shrink it. Prints a run-time estimate first, progress with ETA as it goes; a rerun
// skips every finished step. Writes OUT/results.json and OUT/report.html.
#include <cstdio>
#include <filesystem>
#include <tuple>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/eval.hpp"
#include "critdim/scale.hpp"

namespace fs = std::filesystem;

namespace critdim::cli {

namespace {

// A data path under the shared-data layout, if present.
std::string under(const std::string& dir, const char* rel) {
    std::error_code ec;
    const fs::path p = fs::path(dir) / rel;
    return fs::exists(p, ec) ? p.string() : std::string();
}

}  // namespace

void register_reproduce(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("reproduce", "the paper's protocol end to end: MMLU steering, AdvBench, masking, report");
    static eval::ReproduceOptions o;
    static std::string data;
    static std::string shard;
    static bool no_jailbreak = false, no_reference = false;
    cmd->add_option("model", o.model_path, "GGUF model file")->required()->check(CLI::ExistingFile);
    cmd->add_option("--data", data,
                    "data folder: mmlu/, harmful/advbench/harmful_behaviors.csv, refusal_direction/splits/"
                    "harmless_train.json, wikitext/wiki.test.raw (or an MMLU folder alone)")
        ->required();
    cmd->add_option("--out", o.out_dir, "output folder (steps/, scan/, results.json, report.html)")->required();
    cmd->add_option("--mmlu", o.mmlu_dir, "MMLU folder (default: DATA/mmlu)");
    cmd->add_option("--harmful", o.harmful,
                    "harmful instructions (default: DATA/harmful/advbench/harmful_behaviors.csv)");
    cmd->add_option("--harmless", o.harmless,
                    "harmless instructions (default: DATA/refusal_direction/splits/harmless_train.json)");
    cmd->add_option("--reference", o.reference,
                    "reference text for perplexity and KL (default: DATA/wikitext/wiki.test.raw)");
    cmd->add_option("--subjects", o.subjects, "MMLU subjects (default: all)")->delimiter(',');
    cmd->add_option("--questions", o.questions, "questions sampled per subject")
        ->capture_default_str()
        ->check(CLI::Range(2, 1 << 20));
    cmd->add_option("--identify", o.identify_share,
                    "share of each subject's questions used to identify (the rest evaluate)")
        ->capture_default_str();
    cmd->add_option("--seed", o.seed, "sampling seed (questions, AdvBench, harmless)")->capture_default_str();
    cmd->add_option("--alphas", o.alphas, "steering coefficients tried on the identification split")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-k", o.k, "critical dimensions per subject; a list (5,10,20) sweeps them")
        ->delimiter(',')
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--gap", o.gap, "critical dims: activity-frequency gap threshold (find --gap)")
        ->capture_default_str();
    cmd->add_option("--layers", o.layers,
                    "steered block outputs: middle, all (1..n_layer-1), a block A or a range A-B; a list "
                    "(middle,all,3-5) sweeps them")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--advbench", o.advbench, "AdvBench prompts evaluated")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--advbench-identify", o.advbench_identify,
                    "AdvBench prompts to identify (0: as many as --advbench)")
        ->capture_default_str();
    cmd->add_option("--max-tokens", o.max_tokens, "greedy tokens per jailbreak prompt")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 16));
    cmd->add_option("--advbench-chunk", o.advbench_chunk,
                    "prompts per jailbreak step (the unit a shard owns; a multiple of 8 leaves results as one list)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
    cmd->add_option("--rule", o.rule, "refusal list")->capture_default_str();
    cmd->add_option("--ppl-chunks", o.ppl_chunks, "reference-text chunks for perplexity and KL")->capture_default_str();
    cmd->add_option("--ranks", o.ranks, "magnitude ranks of the masking table")->delimiter(',')->capture_default_str();
    cmd->add_option("--ablate-top", o.ablate_top, "also ablate the top N dims by magnitude (for the overlap)")
        ->capture_default_str();
    cmd->add_option("--ctx", o.n_ctx, "context size (default: the training context)");
    cmd->add_flag("--chat-mmlu", o.chat_mcq, "MMLU prompts as chat turns (default off, METHOD.md 7.12)");
    cmd->add_option("--chat-template", o.chat_template, "a built-in chat template instead of the model's");
    cmd->add_option("--seqs", o.n_seq, "sequences per forward pass")->capture_default_str()->check(CLI::Range(1, 1024));
    cmd->add_flag("--no-jailbreak", no_jailbreak, "skip the AdvBench part");
    cmd->add_flag("--no-reference", no_reference, "skip perplexity and KL");
    cmd->add_flag("--estimate", o.estimate_only, "print the run-time estimate and stop");
    cmd->add_option("--shard", shard,
                    "I/N: compute only shard I of N into OUT/shards/shard-I-of-N (auto: from SLURM_ARRAY_TASK_ID or "
                    "JOB_COMPLETION_INDEX, docs/scale-out.md)");
    cmd->add_flag("--merge", o.merge,
                  "gather every finished shard under OUT/shards into OUT/steps, then assemble (same settings as the "
                  "shards)");
    add_threads_option(cmd, o.n_threads);
    cmd->callback([] {
        if (o.mmlu_dir.empty()) {
            o.mmlu_dir = under(data, "mmlu");
            if (o.mmlu_dir.empty()) o.mmlu_dir = data;
        }
        if (o.harmful.empty() && !no_jailbreak) o.harmful = under(data, "harmful/advbench/harmful_behaviors.csv");
        if (o.harmless.empty() && !no_jailbreak)
            o.harmless = under(data, "refusal_direction/splits/harmless_train.json");
        if (o.reference.empty() && !no_reference) o.reference = under(data, "wikitext/wiki.test.raw");
        if (no_jailbreak) o.harmful.clear(), o.harmless.clear();
        if (no_reference) o.reference.clear();
        if (!no_jailbreak && o.harmful.empty())
            log("critdim: note: no harmful set (--harmful or DATA/harmful/advbench/harmful_behaviors.csv): no "
                "jailbreak part");
        if (!shard.empty()) std::tie(o.shard, o.n_shards) = scale::parse_shard_option(shard);
        o.progress = true;
        const eval::ReproduceSummary s = eval::reproduce(o);
        if (o.estimate_only) return;
        std::printf("%s\n", s.results_path.c_str());
        if (!s.report_path.empty()) std::printf("%s\n", s.report_path.c_str());
        std::fprintf(stderr, "critdim: reproduce: %lld steps run, %lld skipped, %.1f s\n",
                     static_cast<long long>(s.steps_run), static_cast<long long>(s.steps_skipped), s.seconds);
    });
}

}  // namespace critdim::cli
