// critdim generate MODEL --prompt TEXT -n N [--temp T --seed S --top-k K --top-p P]
// (or --tokens 1,2,3): the continuation streams to stdout as text (never half a character).
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/steer_options.hpp"
#include "critdim/server.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::cli {

void register_generate(CLI::App& app) {
    auto* cmd = app.add_subcommand("generate", "generate text from a prompt (greedy or sampled)");
    static std::string path, prompt, tokens_text;
    static int64_t n_predict = 64, n_ctx = 0;
    static model::SamplerParams sp;
    static int threads = 0;
    static bool no_bos = false, parse_special = false, ignore_eos = false, json = false, echo = false, chat = false;
    static std::string system_prompt, chat_template;
    cmd->add_option("model", path, "GGUF model file")->required();
    auto* p = cmd->add_option("--prompt", prompt, "prompt text (tokenized with the model's vocabulary)");
    auto* t = cmd->add_option("--tokens", tokens_text, "prompt as comma-separated token ids instead");
    p->excludes(t);
    cmd->add_option("-n,--n-predict", n_predict, "tokens to generate")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 20));
    cmd->add_option("--temp", sp.temperature, "temperature; 0 is greedy")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 100.0));
    cmd->add_option("--top-k", sp.top_k, "keep the k most likely tokens (0: off)")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 30));
    cmd->add_option("--top-p", sp.top_p, "nucleus sampling mass (1: off)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--seed", sp.seed, "sampling seed")->capture_default_str();
    cmd->add_option("--ctx", n_ctx, "context size (default: prompt + n, at most the training context)");
    cmd->add_flag("--no-bos", no_bos, "do not add BOS even where the vocabulary asks for it");
    cmd->add_flag("--parse-special", parse_special, "recognise special tokens written in the prompt");
    cmd->add_flag("--chat", chat,
                  "render the prompt as a user turn with the model's chat template (special tokens parsed)");
    cmd->add_option("--system", system_prompt, "with --chat: a system turn before the user's");
    cmd->add_option("--chat-template", chat_template,
                    "with --chat: a built-in template instead of the model's (llama3, llama2, chatml, gemma, phi3, "
                    "mistral, smollm, deepseek-r1)");
    cmd->add_flag("--ignore-eos", ignore_eos, "keep going after an end-of-generation token");
    cmd->add_flag("--echo", echo, "print the prompt before the continuation");
    cmd->add_flag("--json", json, "print ids, text and timings as JSON instead of streaming text");
    add_threads_option(cmd, threads);
    SteerOptions& steer_options = add_steer_options(cmd);
    cmd->callback([&steer_options] {
        if (prompt.empty() && tokens_text.empty()) throw_usage("generate: give --prompt TEXT or --tokens IDS");
        auto m = model::Model::load(path);
        const model::HParams& hp = m->hparams();
        auto tok = tokenizer::Tokenizer::from_gguf(m->file());
        if (chat && !tokens_text.empty()) throw_usage("generate: --chat needs --prompt, not --tokens");
        std::vector<int32_t> ids;
        if (chat) {
            // The template writes BOS itself where the model wants it.
            const std::string rendered = tokenizer::render_user_prompt(*tok, path, prompt, system_prompt, chat_template);
            ids = tok->encode(rendered, false, true);
        } else {
            ids = tokens_text.empty() ? tok->encode(prompt, !no_bos, parse_special) : parse_token_list(tokens_text);
        }
        if (ids.empty()) throw_usage("generate: the prompt is empty (and the vocabulary adds no BOS)");
        const int64_t need = static_cast<int64_t>(ids.size()) + n_predict;
        model::ContextParams cp;
        cp.n_ctx = n_ctx > 0 ? n_ctx : need;
        if (cp.n_ctx < need)
            throw_usage("generate: prompt (" + std::to_string(ids.size()) + " tokens) + " + std::to_string(n_predict) +
                        " generated do not fit --ctx " + std::to_string(cp.n_ctx));
        if (n_ctx == 0 && need > hp.n_ctx_train)
            throw_usage("generate: prompt + generated = " + std::to_string(need) +
                        " tokens exceed the model's training context of " + std::to_string(hp.n_ctx_train) +
                        " (set --ctx to go beyond it)");
        cp.n_batch = std::min<int64_t>(512, static_cast<int64_t>(ids.size()));
        cp.n_threads = threads;
        model::Context ctx(*m, cp);
        steer::Steering steering = apply_steering(steer_options, ctx);
        steering.set_prompt_length(0, static_cast<int64_t>(ids.size()));  // for "prompt"/"generated" plans
        server::GenerationParams gp;  // the server generates through the same Decoding
        gp.max_tokens = n_predict;
        gp.sampler = sp;
        gp.ignore_eos = ignore_eos;
        server::Decoding decoding(*tok, gp);

        const auto t0 = std::chrono::steady_clock::now();
        ctx.decode(ids, false);
        const auto t1 = std::chrono::steady_clock::now();
        if (echo && !json) {
            std::string text = tok->decode(ids);
            std::fwrite(text.data(), 1, text.size(), stdout);
        }
        while (!decoding.done()) {
            const server::Decoding::Step step = decoding.next(ctx.logits(0), hp.n_vocab);
            if (!json) {
                std::fwrite(step.text.data(), 1, step.text.size(), stdout);
                std::fflush(stdout);
            }
            if (!decoding.done()) ctx.decode(std::span<const int32_t>(&step.token, 1), false);
        }
        const std::vector<int32_t>& out = decoding.tokens();
        const std::string& text = decoding.text();
        const auto t2 = std::chrono::steady_clock::now();
        const double pp_s = std::chrono::duration<double>(t1 - t0).count();
        const double tg_s = std::chrono::duration<double>(t2 - t1).count();
        if (json) {
            nlohmann::json j = {{"prompt_ids", ids},
                                {"tokens", out},
                                {"text", text},
                                {"prompt_tokens_per_second", static_cast<double>(ids.size()) / pp_s},
                                {"generated_tokens_per_second", static_cast<double>(out.size()) / tg_s}};
            std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        } else {
            std::printf("\n");
            std::fprintf(stderr, "prompt: %zu tokens, %.1f tokens/s; generated: %zu tokens, %.1f tokens/s\n",
                         ids.size(), static_cast<double>(ids.size()) / pp_s, out.size(),
                         static_cast<double>(out.size()) / tg_s);
        }
    });
}

}  // namespace critdim::cli
