// Internal: what `critdim serve --dims critical.json --stats DIR` gives the playground page:
// the critical dimensions to mark and steer, and the stats files a whole-vector direction can
// be built from. Checked against the model at start-up, so the page never meets a mismatch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "critdim/analysis.hpp"
#include "critdim/model.hpp"

namespace critdim::server {

using analysis::CriticalDim;
using analysis::CriticalDomain;

struct StatsEntry {
    std::string name;    // the file name without .stats: what requests name
    std::string domain;  // the domain recorded in the file (scan --name)
    std::string path;
    int64_t n_docs = 0;
};

struct PlaygroundData {
    std::string dims_path;
    std::vector<CriticalDomain> domains;
    std::vector<StatsEntry> stats;

    std::vector<int64_t> critical_dims() const;  // every domain's, ascending, once each
    const StatsEntry* find_stats(const std::string& name) const;
};

// Reads --dims and every DIR/*.stats (either may be empty).
PlaygroundData load_playground_data(const std::string& dims_path, const std::string& stats_dir,
                                    const model::Model& model);

}  // namespace critdim::server
