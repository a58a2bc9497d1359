// Shared by the steering tests: the golden models, plan files written from text, runs that
// capture logits and resid_post.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "critdim/model.hpp"
#include "critdim/steer.hpp"

namespace critdim::steer::test {

std::string golden_dir();
const model::Model& deep_model();  // golden llama-deep-f32: 6 layers, n_embd 64

// Writes text to a fresh file and returns its path.
std::string write_temp(const std::string& name, const std::string& text);

// A plan text with the given interventions (a JSON array body) and optional extra top-level fields.
std::string plan_text(const std::string& interventions, const std::string& extra = "");

struct Run {
    std::vector<float> logits;      // [n_tokens, n_vocab]
    std::vector<float> resid_post;  // [n_layer, n_tokens, n_embd]
};
// One batch over `tokens` (all logits), with `steering` attached when given.
Run run(const model::Model& m, const std::vector<int32_t>& tokens, Steering* steering);

const std::vector<int32_t>& deep_prompt();  // the golden prompt of llama-deep-f32

}  // namespace critdim::steer::test
