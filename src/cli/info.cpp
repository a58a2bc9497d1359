// critdim info MODEL [--json]: architecture, sizes, tensor types, tokenizer, chat template.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"

namespace critdim::cli {

namespace {

void print_text(const nlohmann::json& j) {
    std::printf("%s: %s, %s parameters in %s tensors (%.1f MiB)\n", j["path"].get<std::string>().c_str(),
                j["architecture"].get<std::string>().c_str(), std::to_string(j["n_params"].get<int64_t>()).c_str(),
                std::to_string(j["n_tensors"].get<size_t>()).c_str(), j["file_bytes"].get<double>() / (1 << 20));
    for (const char* k :
         {"name", "n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff", "n_rot", "n_ctx_train",
          "rope_base", "norm_eps", "tied_output", "sliding_window", "attn_softcap", "final_softcap"})
        if (j.contains(k)) std::printf("  %-14s %s\n", k, j[k].dump().c_str());
    std::string types;
    for (const auto& [name, count] : j["tensor_types"].items())
        types += (types.empty() ? "" : ", ") + name + " " + count.dump();
    std::printf("  %-14s %s\n", "tensor types", types.c_str());
    std::printf("  %-14s %s\n", "tokenizer", j["tokenizer"].dump().c_str());
    const std::string tmpl = j["chat_template"].get<std::string>();
    std::printf("  %-14s %s\n", "chat template",
                tmpl.empty() ? "(none)" : (std::to_string(tmpl.size()) + " bytes").c_str());
    for (const auto& [key, value] : j["critdim"].items()) {
        std::string text = value.dump();
        if (text.size() > 100) text = text.substr(0, 97) + "...";
        std::printf("  %s = %s\n", key.c_str(), text.c_str());
    }
}

}  // namespace

void register_info(CLI::App& app) {
    auto* cmd = app.add_subcommand("info", "architecture, sizes, tensor types, tokenizer and chat template of a model");
    static std::string path;
    static bool json = false;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_flag("--json", json, "machine-readable output");
    cmd->callback([] {
        auto m = model::Model::load(path);
        const nlohmann::json j = nlohmann::json::parse(model::describe_json(*m));
        if (json)
            std::printf("%s\n", j.dump(2).c_str());
        else
            print_text(j);
    });
}

}  // namespace critdim::cli
