#include "steer/steer_test_util.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace critdim::steer::test {

std::string golden_dir() { return critdim::test::shared_dir() + "/golden"; }

const model::Model& deep_model() {
    static const std::unique_ptr<model::Model> m = model::Model::load(golden_dir() + "/models/llama-deep-f32.gguf");
    return *m;
}

std::string write_temp(const std::string& name, const std::string& text) {
    const std::string path = critdim::test::temp_dir("steer") + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
}

std::string plan_text(const std::string& interventions, const std::string& extra) {
    return R"({"format": "critdim-steering-plan", "version": 1, )" + extra + R"("interventions": [)" + interventions +
           "]}";
}

Run run(const model::Model& m, const std::vector<int32_t>& tokens, Steering* steering) {
    const model::HParams& hp = m.hparams();
    const auto T = static_cast<int64_t>(tokens.size());
    model::ContextParams cp;
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_threads = 2;
    model::Context ctx(m, cp);
    if (steering) steering->attach(ctx);
    Run r;
    r.resid_post.resize(static_cast<size_t>(hp.n_layer * T * hp.n_embd));
    ctx.hooks().observe_all_layers(model::HookPoint::resid_post, [&](const model::ConstRows& rows) {
        std::copy(rows.data, rows.data + rows.n_rows * rows.n_embd,
                  r.resid_post.begin() + rows.site.layer * T * hp.n_embd);
    });
    ctx.decode(tokens, true);
    for (int64_t t = 0; t < T; ++t) r.logits.insert(r.logits.end(), ctx.logits(t), ctx.logits(t) + hp.n_vocab);
    return r;
}

const std::vector<int32_t>& deep_prompt() {
    static const std::vector<int32_t> p = {1, 457, 206, 111, 368, 445, 145, 189, 45, 492, 496, 356, 290, 291, 330, 379};
    return p;
}

}  // namespace critdim::steer::test
