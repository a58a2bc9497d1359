// critdim dump MODEL --tokens 1,2,3 --out DIR: one forward pass; logits and the residual
// stream at every layer (and any other hook point asked for) as .npy files.
#include <filesystem>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/steer_options.hpp"

namespace critdim::cli {

void register_dump(CLI::App& app) {
    auto* cmd = app.add_subcommand("dump", "one forward pass over token ids; writes logits.npy and resid_post.npy");
    static std::string path, tokens_text, out_dir;
    static std::vector<std::string> points = {"resid_post"};
    static int threads = 0;
    static int64_t n_ctx = 0;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("--tokens", tokens_text, "comma-separated token ids, fed as one batch at positions 0..n-1")
        ->required();
    cmd->add_option("--out", out_dir, "output folder (created if missing)")->required();
    cmd->add_option("--points", points,
                    "hook points to write, each as POINT.npy [n_layer, n_tokens, n_embd] (embed, final_norm: "
                    "[n_tokens, n_embd]); default resid_post")
        ->delimiter(',');
    cmd->add_option("--ctx", n_ctx, "context size (default: the number of tokens)");
    add_threads_option(cmd, threads);
    SteerOptions& steer_options = add_steer_options(cmd);
    cmd->callback([&steer_options] {
        const std::vector<int32_t> ids = parse_token_list(tokens_text);
        auto m = model::Model::load(path);
        const model::HParams& hp = m->hparams();
        const auto T = static_cast<int64_t>(ids.size());
        model::ContextParams cp;
        cp.n_ctx = n_ctx > 0 ? n_ctx : T;
        cp.n_batch = T;
        cp.n_threads = threads;
        model::Context ctx(*m, cp);
        const steer::Steering steering = apply_steering(steer_options, ctx);

        struct Capture {
            model::HookPoint point;
            std::vector<float> data;
        };
        std::vector<Capture> captures;
        for (const std::string& name : points) {
            const model::HookSite probe =
                model::HookSite::parse(name == "embed" || name == "final_norm" ? name : name + ".0");
            captures.push_back({probe.point, {}});
        }
        for (Capture& c : captures) {
            const bool per_layer = c.point != model::HookPoint::embed && c.point != model::HookPoint::final_norm;
            c.data.assign(static_cast<size_t>((per_layer ? hp.n_layer : 1) * T * hp.n_embd), 0.0f);
            float* dst = c.data.data();
            ctx.hooks().observe_all_layers(c.point, [dst, T, per_layer](const model::ConstRows& rows) {
                const int64_t layer = per_layer ? rows.site.layer : 0;
                std::copy(rows.data, rows.data + rows.n_rows * rows.n_embd, dst + layer * T * rows.n_embd);
            });
        }
        ctx.decode(ids, /*all_logits=*/true);

        std::filesystem::create_directories(out_dir);
        std::vector<float> logits(static_cast<size_t>(T * hp.n_vocab));
        for (int64_t i = 0; i < T; ++i)
            std::copy(ctx.logits(i), ctx.logits(i) + hp.n_vocab, logits.begin() + i * hp.n_vocab);
        const int64_t logits_shape[] = {T, hp.n_vocab};
        write_npy(out_dir + "/logits.npy", logits.data(), logits_shape);
        for (size_t i = 0; i < captures.size(); ++i) {
            const Capture& c = captures[i];
            const bool per_layer = c.point != model::HookPoint::embed && c.point != model::HookPoint::final_norm;
            std::vector<int64_t> shape = {T, hp.n_embd};
            if (per_layer) shape.insert(shape.begin(), hp.n_layer);
            write_npy(out_dir + "/" + model::hook_point_name(c.point) + ".npy", c.data.data(), shape);
        }
    });
}

}  // namespace critdim::cli
