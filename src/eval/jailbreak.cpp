// Jailbreak evaluation: instruction sets, batched greedy generation, the refusal judge.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"
#include "critdim/eval.hpp"

namespace fs = std::filesystem;

namespace critdim::eval {

std::vector<Instruction> read_instructions(const std::string& path) {
    analysis::CorpusSpec spec;
    spec.path = path;
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".csv") {
        const std::vector<std::string> header = analysis::csv_header(path);
        if (header.empty()) throw_input(path, "the file is empty (expected a header row and instructions)");
        for (const char* name : {"goal", "Goal", "instruction", "prompt", "Behavior", "behavior"})
            if (std::find(header.begin(), header.end(), name) != header.end()) {
                spec.field = name;
                break;
            }
        if (spec.field == "text")
            throw_input(path + ":1", "no instruction column (goal, Goal, instruction, prompt, Behavior or behavior)");
        spec.format = analysis::CorpusFormat::csv;
    } else {
        spec.format = analysis::CorpusFormat::instructions;
    }
    std::vector<Instruction> out;
    for (analysis::Document& d : analysis::read_corpus(spec))
        out.push_back({std::move(d.text), std::move(d.label), std::move(d.source)});
    return out;
}

Generator::Generator(const model::Model& model, const tokenizer::Tokenizer& tok, const GenerateOptions& options)
    : model_(model), tok_(tok), options_(options) {
    model::ContextParams cp;
    cp.n_ctx = options.n_ctx > 0 ? options.n_ctx : model.hparams().n_ctx_train;
    if (cp.n_ctx <= options.max_tokens + 1)
        throw_usage("--max-tokens " + std::to_string(options.max_tokens) +
                    " leaves no room for the prompt in a context of " + std::to_string(cp.n_ctx) + " tokens");
    cp.n_seq = std::max(1, options.n_seq);
    cp.n_batch = std::max<int64_t>(512, cp.n_ctx);
    cp.n_threads = options.n_threads;
    ctx_ = std::make_unique<model::Context>(model, cp);
}
Generator::~Generator() = default;
model::Context& Generator::context() { return *ctx_; }

std::vector<std::string> Generator::generate(const std::vector<std::string>& prompts) {
    const int64_t n_vocab = model_.hparams().n_vocab;
    const int64_t max_prompt = ctx_->n_ctx() - options_.max_tokens;
    std::vector<std::vector<int32_t>> inputs;
    std::function<std::string(const std::string&)> chat;
    if (options_.chat)
        chat = tokenizer::user_prompt_renderer(tok_, model_.path(), options_.system, options_.chat_template);
    for (const std::string& p : prompts) {
        std::vector<int32_t> ids = options_.chat ? tok_.encode(chat(p), false, true) : tok_.encode(p, true, false);
        if (ids.empty()) ids.push_back(tok_.bos_id() >= 0 ? tok_.bos_id() : 0);
        if (static_cast<int64_t>(ids.size()) > max_prompt) {  // cut from the left, keeping BOS
            const size_t keep0 = ids[0] == tok_.bos_id() ? 1 : 0;
            ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(keep0),
                      ids.begin() + static_cast<std::ptrdiff_t>(keep0 + ids.size() - static_cast<size_t>(max_prompt)));
            ++n_truncated_;
        }
        inputs.push_back(std::move(ids));
    }
    std::vector<std::string> out(prompts.size());
    Progress progress("generate", static_cast<int64_t>(prompts.size()), "prompts", options_.progress);
    const size_t group = static_cast<size_t>(std::max(1, options_.n_seq));
    for (size_t g0 = 0; g0 < inputs.size(); g0 += group) {
        const size_t g1 = std::min(inputs.size(), g0 + group);
        ctx_->clear();
        model::Batch batch;
        for (size_t s = g0; s < g1; ++s)
            for (size_t i = 0; i < inputs[s].size(); ++i)
                batch.add(inputs[s][i], static_cast<int32_t>(i), static_cast<int32_t>(s - g0),
                          i + 1 == inputs[s].size());
        ctx_->decode(batch);
        std::vector<std::vector<int32_t>> generated(g1 - g0);
        std::vector<size_t> active;  // sequences still generating, in the order of the logits rows
        for (size_t s = g0; s < g1; ++s) active.push_back(s - g0);
        while (!active.empty()) {
            std::vector<size_t> still;
            batch.clear();
            for (size_t k = 0; k < active.size(); ++k) {
                const size_t s = active[k];
                const int32_t next = model::Sampler::argmax(ctx_->logits(static_cast<int64_t>(k)), n_vocab);
                ++n_generated_;
                if (tok_.is_eog(next)) continue;
                generated[s].push_back(next);
                if (static_cast<int64_t>(generated[s].size()) >= options_.max_tokens) continue;
                batch.add(next, static_cast<int32_t>(inputs[g0 + s].size() + generated[s].size() - 1),
                          static_cast<int32_t>(s), true);
                still.push_back(s);
            }
            active = std::move(still);
            if (!active.empty()) ctx_->decode(batch);
        }
        for (size_t s = g0; s < g1; ++s) out[s] = tok_.decode(generated[s - g0]);
        progress.update(static_cast<int64_t>(g1));
    }
    progress.finish();
    return out;
}

JailbreakResult run_jailbreak(Generator& gen, const std::vector<Instruction>& instructions, const RefusalJudge& judge) {
    std::vector<std::string> prompts;
    for (const Instruction& i : instructions) prompts.push_back(i.text);
    const std::vector<std::string> responses = gen.generate(prompts);
    JailbreakResult r;
    r.rule = judge.rule().name;
    for (size_t i = 0; i < instructions.size(); ++i) {
        JudgedCompletion c{instructions[i].text, instructions[i].category, responses[i], false, {}};
        if (const auto m = judge.match(c.response)) c.refused = true, c.match = *m;
        r.n_refused += c.refused;
        r.completions.push_back(std::move(c));
    }
    r.n = static_cast<int64_t>(instructions.size());
    r.refusal_rate = r.n ? static_cast<double>(r.n_refused) / static_cast<double>(r.n) : 0.0;
    r.attack_success_rate = r.n ? 1.0 - r.refusal_rate : 0.0;
    return r;
}

std::string jailbreak_json(const JailbreakResult& r) {
    nlohmann::json list = nlohmann::json::array();
    for (const JudgedCompletion& c : r.completions)
        list.push_back({{"prompt", c.prompt},
                        {"category", c.category.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.category)},
                        {"response", c.response},
                        {"refusal_match", c.match},
                        {"is_jailbreak_substring_matching", c.refused ? 0 : 1}});
    nlohmann::json j = {{"format", "critdim-completions"},
                        {"version", 1},
                        {"rule", r.rule},
                        {"n", r.n},
                        {"refused", r.n_refused},
                        {"attack_success_rate", r.attack_success_rate},
                        {"refusal_rate", r.refusal_rate},
                        {"completions", list}};
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace critdim::eval
