// critdim export-cvector plan.json --out cv.gguf [--model MODEL]: a plan as a llama.cpp control
// vector, so that llama-cli --control-vector-scaled cv.gguf 1.0 steers as critdim does. Plans
// that a control vector cannot express (set, scale, clamp, zero, mean, other hook points,
// position policies, block 0) are refused with the field at fault.
#include "cli/commands.hpp"
#include "critdim/steer.hpp"

namespace critdim::cli {

void register_export_cvector(CLI::App& app) {
    auto* cmd = app.add_subcommand("export-cvector", "a steering plan as a llama.cpp control vector (GGUF)");
    static std::string plan_path, out, model_path;
    cmd->add_option("plan", plan_path, "steering plan (JSON)")->required()->check(CLI::ExistingFile);
    cmd->add_option("--out", out, "control vector to write (GGUF)")->required();
    cmd->add_option("--model", model_path, "check the plan against this model and take n_embd, n_layer, arch from it")
        ->check(CLI::ExistingFile);
    cmd->callback([] {
        const steer::Plan plan = steer::load_plan(plan_path);
        std::unique_ptr<model::Model> m;
        if (!model_path.empty()) m = model::Model::load(model_path);
        steer::write_cvector(steer::plan_to_cvector(plan, m.get()), out);
    });
}

}  // namespace critdim::cli
