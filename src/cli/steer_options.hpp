// --steer plan.json [--alpha X] for commands that run the model (generate, ppl, dump, bench).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "critdim/steer.hpp"

namespace critdim::cli {

struct SteerOptions {
    std::vector<std::string> plans;
    std::vector<double> alphas;
};

// Adds the options; the returned object lives as long as the program.
SteerOptions& add_steer_options(CLI::App* cmd);

// Loads the plans, checks them against the context's model and attaches them. Without
// --steer it returns an empty Steering that changes nothing. One --alpha applies to every
// plan; several pair with the plans in order.
steer::Steering apply_steering(const SteerOptions& options, model::Context& ctx);

}  // namespace critdim::cli
