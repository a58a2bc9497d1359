// Internal: plans compiled into per-site steps (shared by the applier and the exporter, so
// that an exported control vector holds exactly the vector critdim adds).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "critdim/steer.hpp"

namespace critdim::steer {

// One operation at one site, alpha folded in where the operation allows (add: v = alpha*values;
// scale: v = the factor). Empty dims: every dimension, v of length n_embd.
struct Step {
    Op op = Op::add;
    PositionPolicy positions;
    float alpha = 1.0f;
    std::vector<int32_t> dims;
    std::vector<float> v, lo, hi;
};

struct SiteSteps {
    model::HookSite site;
    std::vector<Step> steps;  // in plan order
};

// Checks the plans against the model (Error(mismatch) naming plan and field) and compiles them
// in order. Layers beyond the model with beyond_model = ignore are dropped with a note.
std::vector<SiteSteps> compile_plans(const model::HParams& hp, std::span<const Plan> plans,
                                     std::optional<double> alpha_override, std::vector<std::string>* notes);

// into += add, densified unless both are dense.
void merge_add(Step& into, const Step& add, int64_t n_embd);

// Applies one step to one row of n_embd values.
void apply_step(const Step& step, float* row, int64_t n_embd);

}  // namespace critdim::steer
