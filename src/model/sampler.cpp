// Token sampling: greedy (argmax, ties to the lower id, as llama.cpp's greedy sampler), or
// seeded temperature with optional top-k and top-p (nucleus) truncation.
#include <algorithm>
#include <cmath>

#include "critdim/model.hpp"

namespace critdim::model {

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::argmax(const float* logits, int64_t n_vocab) {
    int64_t best = 0;
    for (int64_t i = 1; i < n_vocab; ++i)
        if (logits[i] > logits[best]) best = i;
    return static_cast<int32_t>(best);
}

int32_t Sampler::sample(const float* logits, int64_t n_vocab) {
    if (params_.temperature <= 0.0f) return argmax(logits, n_vocab);
    candidates_.resize(static_cast<size_t>(n_vocab));
    for (int64_t i = 0; i < n_vocab; ++i) candidates_[i] = {logits[i] / params_.temperature, static_cast<int32_t>(i)};
    auto by_logit = [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    size_t n = candidates_.size();
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
        std::partial_sort(candidates_.begin(), candidates_.begin() + params_.top_k, candidates_.end(), by_logit);
        n = static_cast<size_t>(params_.top_k);
    } else {
        std::sort(candidates_.begin(), candidates_.end(), by_logit);
    }
    const float max_logit = candidates_[0].first;
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) {
        candidates_[i].first = std::exp(candidates_[i].first - max_logit);
        total += candidates_[i].first;
    }
    if (params_.top_p < 1.0f) {
        double cum = 0.0;
        size_t keep = n;
        for (size_t i = 0; i < n; ++i) {
            cum += candidates_[i].first / total;
            if (cum >= params_.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        total = 0.0;
        for (size_t i = 0; i < n; ++i) total += candidates_[i].first;
    }
    std::uniform_real_distribution<double> uniform(0.0, total);
    const double r = uniform(rng_);
    double cum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        cum += candidates_[i].first;
        if (r < cum) return candidates_[i].second;
    }
    return candidates_[n - 1].second;
}

}  // namespace critdim::model
