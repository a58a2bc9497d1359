// critdim ppl MODEL --file TEXT [--ctx N] [--steer plan.json [--kl]]: perplexity the way
// llama-perplexity computes it (eval::perplexity, docs/eval.md). The whole file is tokenized (BOS
// first where the vocabulary adds one) and cut into chunks of n_ctx tokens; each chunk's first
// token is replaced by BOS and only its second half is scored. PPL = exp(mean NLL), ± its
// standard error as llama.cpp prints it. --kl adds the unsteered perplexity and the KL divergence
// of the steered from the unsteered next-token distributions.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/steer_options.hpp"
#include "critdim/eval.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::cli {

void register_ppl(CLI::App& app) {
    auto* cmd = app.add_subcommand("ppl", "perplexity of a text file, computed as llama-perplexity does");
    static std::string path, file;
    static eval::PerplexityOptions po;
    static bool json = false, kl = false;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("-f,--file", file, "text file")->required();
    cmd->add_option("-c,--ctx", po.n_ctx, "tokens per chunk (default: the training context)");
    cmd->add_option("-b,--batch", po.n_batch, "tokens per forward pass (several chunks share one)")
        ->capture_default_str();
    cmd->add_option("--chunks", po.max_chunks, "score at most this many chunks (0: all)");
    cmd->add_flag(
        "--kl", kl,
        "with --steer: also the unsteered perplexity and KL(steered || unsteered) per token (coherence guard)");
    cmd->add_flag("--json", json, "machine-readable result");
    add_threads_option(cmd, po.n_threads);
    SteerOptions& steer_options = add_steer_options(cmd);
    cmd->callback([&steer_options] {
        if (kl && steer_options.plans.empty()) throw_usage("--kl needs --steer PLAN");
        auto m = model::Model::load(path);
        auto tok = tokenizer::Tokenizer::from_gguf(m->file());
        const std::vector<int32_t> tokens = tok->encode(read_text_file(file), true, false);
        model::Context ctx(*m, eval::perplexity_context(*m, po, static_cast<int64_t>(tokens.size()), file));
        steer::Steering steering = apply_steering(steer_options, ctx);
        po.progress = false;
        const eval::PerplexityResult r = eval::perplexity(ctx, *tok, tokens, po, kl ? &steering : nullptr);
        if (json) {
            nlohmann::json j = {
                {"file", file},           {"n_ctx", r.n_ctx}, {"n_chunks", r.n_chunks},     {"n_tokens", r.n_tokens},
                {"n_scored", r.n_scored}, {"ppl", r.ppl},     {"ppl_stderr", r.ppl_stderr}, {"mean_nll", r.mean_nll}};
            if (r.kl) {
                j["unsteered_ppl"] = r.base_ppl;
                j["kl_mean"] = r.kl_mean;
                j["kl_max"] = r.kl_max;
            }
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("Final estimate: PPL = %.4f +/- %.5f (%lld chunks of %lld tokens, %lld scored)\n", r.ppl,
                        r.ppl_stderr, static_cast<long long>(r.n_chunks), static_cast<long long>(r.n_ctx),
                        static_cast<long long>(r.n_scored));
            if (r.kl)
                std::printf("unsteered PPL = %.4f; KL(steered || unsteered) = %.6f nats/token (max %.6f)\n", r.base_ppl,
                            r.kl_mean, r.kl_max);
        }
    });
}

}  // namespace critdim::cli
