// Model loading: open the GGUF file, find its architecture in the registry, and let the
// architecture's description read the hyper-parameters and bind the weights.
#include <array>

#include "model/binder.hpp"

namespace critdim::model {

namespace {
struct ArchEntry {
    const char* name;
    void (*load)(Binder&, Model&);
};
constexpr std::array<ArchEntry, 6> kArchitectures = {{
    {"llama", load_llama},
    {"qwen2", load_qwen2},
    {"qwen3", load_qwen3},
    {"gemma2", load_gemma2},
    {"gpt2", load_gpt2},
    {"phi3", load_phi3},
}};
}  // namespace

std::string Model::supported_architectures() {
    std::string s;
    for (const auto& a : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(a.name);
    return s;
}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
    (void)options;
    auto m = std::make_unique<Model>();
    m->file_ = gguf::File::open(path);
    const std::string arch = m->file_->get_string("general.architecture");
    const ArchEntry* entry = nullptr;
    for (const auto& a : kArchitectures)
        if (arch == a.name) entry = &a;
    if (!entry)
        throw Error(ErrorKind::input, path,
                    "architecture '" + arch + "' is not supported (supported: " + supported_architectures() + ")");
    m->hp_.arch = arch;
    Binder binder(*m->file_, arch);
    entry->load(binder, *m);
    return m;
}

}  // namespace critdim::model
