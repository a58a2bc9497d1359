// Steering plans (JSON) on arbitrary bytes, then checked against a small model so that the
// model-dependent validation runs too.
#include "critdim/steer.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::unique_ptr<critdim::model::Model> model =
        critdim::model::Model::load(critdim::fuzz::shared_dir() + "/golden/models/llama-deep-f32.gguf");
    const std::string text(reinterpret_cast<const char*>(data), size);
    critdim::fuzz::expect_only_critdim_errors([&] {
        const critdim::steer::Plan plan = critdim::steer::parse_plan(text, "fuzz.json", "/nonexistent");
        (void)critdim::steer::plan_to_json(plan);
        critdim::steer::Steering steering(*model, std::span<const critdim::steer::Plan>(&plan, 1));
        (void)steering.describe();
    });
    return 0;
}
