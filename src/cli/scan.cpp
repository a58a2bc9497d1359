// critdim scan MODEL --corpus SPEC --out STATS: residual-stream statistics per hook site and
// dimension (docs/analysis.md), written as a GGUF stats file (docs/formats.md).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/analysis.hpp"
#include "critdim/gguf.hpp"
#include "critdim/scale.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::cli {

void register_scan(CLI::App& app) {
    auto* cmd = app.add_subcommand("scan", "accumulate residual-stream statistics over a corpus into a stats file");
    static std::string path, out, policy = "last", axis = "vector", shard = "0/1";
    static std::vector<std::string> corpus;
    static std::string field = "text";
    static analysis::ScanOptions o;
    static bool json = false, no_stats = false, no_bos = false, chat = false;
    static std::string system_prompt, chat_template;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("--corpus", corpus,
                    "[FORMAT:]PATH, repeatable; FORMAT one of lines, paragraphs, file, jsonl, instructions, mmlu, csv "
                    "(default: by the file's extension; a folder reads every file)")
        ->required();
    cmd->add_option("--field", field, "jsonl: the member holding the text; csv: the column")->capture_default_str();
    cmd->add_option("--out", out, "stats file to write (GGUF)")->required();
    cmd->add_option("--points", o.points,
                    "hook points (every layer) or sites, comma-separated: resid_post, resid_pre, attn_out, mlp_out, "
                    "embed, final_norm, resid_post.3")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--policy", policy,
                    "positions counted: last (last prompt token), content (all but BOS/special), all")
        ->capture_default_str();
    cmd->add_option("--sigma-axis", axis,
                    "3-sigma activity: vector (mean/std over each token's vector), vector-robust (median/MAD), corpus "
                    "(per dimension, from --sigma-ref)")
        ->capture_default_str();
    cmd->add_option("--sigma", o.sigma_k, "activity threshold in sigmas")->capture_default_str();
    cmd->add_option("--sigma-ref", o.sigma_ref,
                    "stats file giving each dimension's mean and std (--sigma-axis corpus)");
    cmd->add_option("--massive-abs", o.massive_abs, "Sun et al.: |x| above this ...")->capture_default_str();
    cmd->add_option("--massive-ratio", o.massive_ratio, "... and above this times the row's median |x|")
        ->capture_default_str();
    cmd->add_option("--shard", shard, "I/N: scan the I-th of N contiguous blocks of documents; auto: from the scheduler "
                    "(SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX; docs/scale-out.md)")->capture_default_str();
    cmd->add_option("--name", o.name, "domain name recorded in the file (default: the first corpus file's stem)");
    cmd->add_option("--ctx", o.n_ctx, "context length; longer documents are cut from the left (default: the model's)");
    cmd->add_option("-b,--batch", o.n_batch, "tokens per forward pass")->capture_default_str();
    cmd->add_option("--seqs", o.n_seq, "documents per forward pass (default: from --batch and --ctx)");
    cmd->add_option("--checkpoint-seconds", o.checkpoint_seconds, "checkpoint interval (0: off)")
        ->capture_default_str();
    cmd->add_option("--checkpoint-docs", o.checkpoint_docs, "also checkpoint after this many documents (0: off)")
        ->capture_default_str();
    cmd->add_flag("--no-bos", no_bos, "do not add BOS even where the vocabulary asks for it");
    cmd->add_flag("--parse-special", o.parse_special, "special tokens written in the text become their ids");
    cmd->add_flag("--progress", o.progress, "show the progress bar even when stderr is not a terminal");
    cmd->add_flag("--chat", chat,
                  "render each document as a user turn with the model's chat template (special tokens parsed)");
    cmd->add_option("--system", system_prompt, "with --chat: a system turn before each document");
    cmd->add_option("--chat-template", chat_template, "with --chat: a built-in template instead of the model's");
    cmd->add_flag("--keep-rows", o.keep_rows,
                  "also store each document's last-token row at every site (for `vector --method pca`)");
    cmd->add_flag("--no-stats", no_stats, "run the forward passes only (to measure the statistics' overhead)");
    cmd->add_flag("--json", json, "print a JSON report");
    add_threads_option(cmd, o.n_threads);
    cmd->callback([] {
        const std::vector<analysis::CorpusSpec> specs = analysis::parse_corpus_specs(corpus, field);
        o.policy = analysis::parse_position_policy(policy);
        o.sigma_axis = analysis::parse_sigma_axis(axis);
        std::tie(o.shard, o.n_shards) = scale::parse_shard_option(shard);
        o.statistics = !no_stats;
        o.add_bos = !no_bos;
        if (o.n_batch < 1) throw_usage("--batch must be positive");
        if (!chat && (!system_prompt.empty() || !chat_template.empty()))
            throw_usage("--system and --chat-template need --chat");
        if (chat) {
            const auto file = gguf::File::open(path);
            const auto tok = tokenizer::Tokenizer::from_gguf(*file);
            auto render = tokenizer::user_prompt_renderer(*tok, path, system_prompt, chat_template);
            o.format = [render](const analysis::Document& d) { return render(d.text); };
            o.format_name = "chat:" + (chat_template.empty() ? std::string("model") : chat_template) +
                            (system_prompt.empty() ? "" : " system:" + system_prompt);
            o.parse_special = true;
        }
        const analysis::ScanReport r = analysis::scan(path, specs, o, out);
        const double tps = r.forward_seconds > 0 ? static_cast<double>(r.n_tokens) / r.forward_seconds : 0.0;
        if (json) {
            nlohmann::json j = {{"out", out},
                                {"n_docs", r.n_docs},
                                {"n_tokens", r.n_tokens},
                                {"n_truncated", r.n_truncated},
                                {"resumed_from", r.resumed_from},
                                {"seconds", r.seconds},
                                {"forward_seconds", r.forward_seconds},
                                {"tokens_per_second", tps},
                                {"statistics_seconds", r.statistics_seconds},
                                {"statistics", !no_stats}};
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("%s: %lld documents, %lld tokens, %.1f tokens/s%s\n", out.c_str(),
                        static_cast<long long>(r.n_docs), static_cast<long long>(r.n_tokens), tps,
                        r.resumed_from ? " (resumed)" : "");
        }
    });
}

}  // namespace critdim::cli
