// critdim synth --arch ARCH --config NAME|FILE.json --type TYPE --seed S --out M.gguf
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"

namespace critdim::cli {

void register_synth(CLI::App& app) {
    auto* cmd = app.add_subcommand("synth", "write a random-weight GGUF model at a real configuration");
    static std::string arch, config = "tiny", type_name = "f32", out, plant;
    static uint64_t seed = 0;
    static int threads = 0;
    static bool json = false;
    std::string names;
    for (const auto& n : model::synth_config_names()) names += (names.empty() ? "" : ", ") + n;
    cmd->add_option("--arch", arch,
                    "architecture (" + model::Model::supported_architectures() + "); default: the configuration's own");
    cmd->add_option("--config", config, "named configuration (" + names + ") or a JSON file")->capture_default_str();
    cmd->add_option("--type", type_name, "type of every 2-D weight: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k")
        ->capture_default_str();
    cmd->add_option("--seed", seed, "random seed")->capture_default_str();
    cmd->add_option("--plant", plant, "plant known dimensions (default): metadata critdim.plant.*");
    cmd->add_option("--out", out, "output GGUF file")->required();
    cmd->add_flag("--json", json, "print a JSON report");
    add_threads_option(cmd, threads);
    cmd->callback([] {
        model::SynthOptions o;
        o.arch = arch;
        o.type = model::parse_synth_type(type_name);
        o.config = model::synth_config(config);
        o.seed = seed;
        o.plant = plant;
        o.n_threads = threads;
        const model::SynthReport r = model::synthesize(o, out);
        if (json) {
            nlohmann::json j = {{"path", out}, {"bytes", r.file_bytes}, {"type_fallbacks", r.fallbacks}};
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("%s: %.1f MiB\n", out.c_str(), static_cast<double>(r.file_bytes) / (1 << 20));
            if (!r.fallbacks.empty())
                std::printf("%zu tensors could not be %s (rows not a multiple of its block) and fell back: %s, ...\n",
                            r.fallbacks.size(), tensor_type_name(o.type), r.fallbacks.front().c_str());
        }
    });
}

}  // namespace critdim::cli
