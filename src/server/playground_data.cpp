// The playground's start-up data: critical.json's domains and the --stats folder's files.
#include "server/playground_data.hpp"

#include <algorithm>
#include <filesystem>

#include "critdim/analysis.hpp"

namespace critdim::server {

std::vector<int64_t> PlaygroundData::critical_dims() const { return analysis::distinct_dims(domains); }

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
        data.domains = analysis::read_critical(dims_path, hp.n_embd).domains;
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
