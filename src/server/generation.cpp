// Generation of one sequence, shared by `critdim generate` and the server: chat rendering,
// sampling, the end conditions, and text released in whole characters that can no longer
// turn into a stop string.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "critdim/server.hpp"

namespace critdim::server {

namespace {

std::string template_source(const tokenizer::Tokenizer& tok, const std::string& where,
                            const std::string& template_name) {
    if (!template_name.empty()) return tokenizer::builtin_chat_template(template_name);
    if (tok.chat_template().empty())
        throw_usage(where +
                    " has no tokenizer.chat_template; name one with --chat-template (llama3, llama2, "
                    "chatml, gemma, phi3, mistral, smollm, deepseek-r1)");
    return tok.chat_template();
}

}  // namespace

ChatFormatter::ChatFormatter(const tokenizer::Tokenizer& tok, const std::string& where,
                             const std::string& template_name)
    : chat_(template_source(tok, where, template_name), template_name.empty()
                                                            ? where + ": tokenizer.chat_template"
                                                            : "built-in chat template '" + template_name + "'") {
    if (tok.bos_id() >= 0) options_.special_tokens["bos_token"] = tok.token_text(tok.bos_id());
    if (tok.eos_id() >= 0) options_.special_tokens["eos_token"] = tok.token_text(tok.eos_id());
}

std::string ChatFormatter::render(std::span<const tokenizer::ChatMessage> messages) const {
    return chat_.render(messages, options_);
}

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::stop:
            return "stop";
        case FinishReason::length:
            return "length";
        case FinishReason::none:
            break;
    }
    return "";
}

TokenLogprob token_logprob(const float* logits, int64_t n_vocab, int32_t token, int top) {
    float max_logit = logits[0];
    for (int64_t i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, logits[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max_logit));
    const double log_z = static_cast<double>(max_logit) + std::log(sum);
    TokenLogprob lp;
    lp.token = token;
    lp.logprob = static_cast<float>(logits[token] - log_z);
    if (top > 0) {
        std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
        std::iota(ids.begin(), ids.end(), 0);
        const auto k = static_cast<size_t>(std::min<int64_t>(top, n_vocab));
        std::partial_sort(
            ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
        for (size_t i = 0; i < k; ++i) lp.top.emplace_back(ids[i], static_cast<float>(logits[ids[i]] - log_z));
    }
    return lp;
}

Decoding::Decoding(const tokenizer::Tokenizer& tok, const GenerationParams& params)
    : tok_(tok), params_(params), sampler_(params.sampler), stream_(tok) {
    if (params_.max_tokens <= 0) finish_ = FinishReason::length;
}

// Releases the held text up to the first stop string (and ends), or all of it when `all`, or
// all but its longest tail that begins a stop string.
std::string Decoding::release(bool all) {
    size_t cut = std::string::npos;
    for (const std::string& s : params_.stop) {
        if (s.empty()) continue;
        const size_t at = held_.find(s);
        if (at != std::string::npos) cut = std::min(cut, at);
    }
    std::string out;
    if (cut != std::string::npos) {
        out = held_.substr(0, cut);
        held_.clear();
        finish_ = FinishReason::stop;
    } else {
        size_t keep = 0;
        if (!all)
            for (const std::string& s : params_.stop)
                for (size_t n = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); n > keep; --n)
                    if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
                        keep = n;
                        break;
                    }
        out = held_.substr(0, held_.size() - keep);
        held_.erase(0, held_.size() - keep);
    }
    text_ += out;
    return out;
}

Decoding::Step Decoding::next(const float* logits, int64_t n_vocab) {
    if (done()) throw Error(ErrorKind::internal, "decoding", "next() after the sequence ended");
    Step step;
    step.token = sampler_.sample(logits, n_vocab);
    if (params_.top_logprobs >= 0) step.logprob = token_logprob(logits, n_vocab, step.token, params_.top_logprobs);
    tokens_.push_back(step.token);
    if (tok_.is_eog(step.token) && !params_.ignore_eos) {
        held_ += stream_.flush();
        step.text = release(true);
        if (finish_ == FinishReason::none) finish_ = FinishReason::stop;
        return step;
    }
    held_ += stream_.push(step.token);
    step.text = release(false);
    if (!done() && static_cast<int64_t>(tokens_.size()) >= params_.max_tokens) {
        held_ += stream_.flush();
        step.text += release(true);
        if (finish_ == FinishReason::none) finish_ = FinishReason::length;
    }
    return step;
}

}  // namespace critdim::server
