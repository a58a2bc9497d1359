// The playground's start-up data: critical.json's domains and the --stats folder's files.
#include "server/playground_data.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"

namespace critdim::server {

namespace {

using json = nlohmann::json;

CriticalDim parse_dim(const json& e, const std::string& where, const std::string& at, int64_t n_embd) {
    if (!e.is_object() || !e.contains("dim") || !e["dim"].is_number_integer())
        throw_input(where, at + ".dim: expected an integer");
    CriticalDim d;
    d.dim = e["dim"].get<int64_t>();
    if (d.dim < 0 || d.dim >= n_embd)
        throw Error(ErrorKind::mismatch, where,
                    at + ".dim: " + std::to_string(d.dim) + " is outside the model's " + std::to_string(n_embd) +
                        " dimensions");
    d.rank = e.value("rank", 0);
    if (e.contains("score") && e["score"].is_number()) d.score = e["score"].get<double>();
    if (e.contains("layers")) {
        if (!e["layers"].is_array()) throw_input(where, at + ".layers: expected a list of blocks");
        for (const json& l : e["layers"]) {
            if (!l.is_number_integer()) throw_input(where, at + ".layers: expected integers");
            d.layers.push_back(l.get<int>());
        }
    }
    return d;
}

}  // namespace

std::vector<CriticalDomain> parse_critical(const std::string& text, const std::string& where, int64_t n_embd) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw_input(where, std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object() || j.value("format", "") != "critdim.critical" || !j.contains("domains") ||
        !j["domains"].is_array())
        throw_input(where, "not a critical.json file (format 'critdim.critical' with a 'domains' list)");
    std::vector<CriticalDomain> out;
    for (size_t i = 0; i < j["domains"].size(); ++i) {
        const json& d = j["domains"][i];
        const std::string at = "domains[" + std::to_string(i) + "]";
        if (!d.is_object() || !d.contains("dims") || !d["dims"].is_array())
            throw_input(where, at + ".dims: expected a list");
        CriticalDomain domain;
        domain.name = d.value("name", "domain " + std::to_string(i));
        for (size_t k = 0; k < d["dims"].size(); ++k)
            domain.dims.push_back(parse_dim(d["dims"][k], where, at + ".dims[" + std::to_string(k) + "]", n_embd));
        out.push_back(std::move(domain));
    }
    return out;
}

std::vector<int64_t> PlaygroundData::critical_dims() const {
    std::vector<int64_t> dims;
    for (const CriticalDomain& d : domains)
        for (const CriticalDim& c : d.dims) dims.push_back(c.dim);
    std::sort(dims.begin(), dims.end());
    dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
    return dims;
}

const StatsEntry* PlaygroundData::find_stats(const std::string& name) const {
    for (const StatsEntry& s : stats)
        if (s.name == name) return &s;
    return nullptr;
}

PlaygroundData load_playground_data(const std::string& dims_path, const std::string& stats_dir,
                                    const model::Model& model) {
    namespace fs = std::filesystem;
    PlaygroundData data;
    const model::HParams& hp = model.hparams();
    if (!dims_path.empty()) {
        data.dims_path = dims_path;
        data.domains = parse_critical(read_text_file(dims_path), dims_path, hp.n_embd);
    }
    if (stats_dir.empty()) return data;
    std::error_code ec;
    if (!fs::is_directory(stats_dir, ec)) throw_usage("--stats: '" + stats_dir + "' is not a folder");
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(stats_dir))
        if (entry.is_regular_file() && entry.path().extension() == ".stats") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& p : files) {
        const analysis::Stats s = analysis::Stats::read(p.string());
        if (s.header.n_embd != hp.n_embd || s.header.n_layer != hp.n_layer)
            throw Error(ErrorKind::mismatch, p.string(),
                        "the stats are for n_embd " + std::to_string(s.header.n_embd) + ", n_layer " +
                            std::to_string(s.header.n_layer) + "; the model has " + std::to_string(hp.n_embd) + ", " +
                            std::to_string(hp.n_layer));
        data.stats.push_back({p.stem().string(), s.header.name, p.string(), s.header.n_docs});
    }
    return data;
}

}  // namespace critdim::server
