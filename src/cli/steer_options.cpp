#include "cli/steer_options.hpp"

#include <deque>

#include "cli/common.hpp"

namespace critdim::cli {

SteerOptions& add_steer_options(CLI::App* cmd) {
    static std::deque<SteerOptions> storage;  // one per command; deque keeps addresses stable
    SteerOptions& o = storage.emplace_back();
    cmd->add_option("--steer", o.plans, "steering plan (JSON); repeat to compose plans in order")
        ->type_name("PLAN")
        ->check(CLI::ExistingFile);
    cmd->add_option("--alpha", o.alphas, "replaces the plans' top-level alpha (one for all, or one per --steer)")
        ->type_name("X");
    return o;
}

steer::Steering apply_steering(const SteerOptions& options, model::Context& ctx) {
    if (!options.alphas.empty() && options.plans.empty()) throw_usage("--alpha needs --steer PLAN");
    if (options.alphas.size() > 1 && options.alphas.size() != options.plans.size())
        throw_usage("--alpha: " + std::to_string(options.alphas.size()) + " values for " +
                    std::to_string(options.plans.size()) + " plans (give one, or one per --steer)");
    std::vector<steer::Plan> plans;
    for (size_t i = 0; i < options.plans.size(); ++i) {
        plans.push_back(steer::load_plan(options.plans[i]));
        if (!options.alphas.empty()) plans.back().alpha = options.alphas[options.alphas.size() == 1 ? 0 : i];
    }
    steer::Steering steering(ctx.model(), plans);
    for (const std::string& note : steering.notes()) log("critdim: note: " + note);
    steering.attach(ctx);
    return steering;
}

}  // namespace critdim::cli
