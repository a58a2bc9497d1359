// Reading critical.json (docs/formats.md) back: domains, their dimensions with rank, score and
// layers, and the provenance fields the readers check.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"

namespace critdim::analysis {

namespace {

using json = nlohmann::json;

CriticalDim parse_dim(const json& e, const std::string& where, const std::string& at, int64_t n_embd) {
    if (!e.is_object() || !e.contains("dim") || !e["dim"].is_number_integer())
        throw_input(where, at + ".dim: expected an integer");
    CriticalDim d;
    d.dim = e["dim"].get<int64_t>();
    if (n_embd > 0 && (d.dim < 0 || d.dim >= n_embd))
        throw Error(ErrorKind::mismatch, where,
                    at + ".dim: " + std::to_string(d.dim) + " is outside the model's " + std::to_string(n_embd) +
                        " dimensions");
    if (e.contains("rank") && e["rank"].is_number_integer()) d.rank = e["rank"].get<int>();
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

std::vector<int64_t> CriticalDomain::dim_ids() const {
    std::vector<int64_t> ids;
    for (const CriticalDim& d : dims) ids.push_back(d.dim);
    return ids;
}

std::vector<int64_t> distinct_dims(const std::vector<CriticalDomain>& domains) {
    std::vector<int64_t> dims;
    for (const CriticalDomain& d : domains)
        for (const CriticalDim& c : d.dims) dims.push_back(c.dim);
    std::sort(dims.begin(), dims.end());
    dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
    return dims;
}

CriticalFile parse_critical(const std::string& text, const std::string& where, int64_t n_embd) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw_input(where, std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("format") || j["format"] != "critdim.critical" || !j.contains("domains") ||
        !j["domains"].is_array())
        throw_input(where, "not a critical.json file (format 'critdim.critical' with a 'domains' list)");
    CriticalFile file;
    if (j.contains("version") && j["version"].is_number_integer()) file.version = j["version"].get<int>();
    if (j.contains("parameters") && j["parameters"].is_object() && j["parameters"].contains("point") &&
        j["parameters"]["point"].is_string())
        file.point = j["parameters"]["point"].get<std::string>();
    if (j.contains("model") && j["model"].is_object() && j["model"].contains("hash") && j["model"]["hash"].is_string())
        file.model_hash = j["model"]["hash"].get<std::string>();
    for (size_t i = 0; i < j["domains"].size(); ++i) {
        const json& d = j["domains"][i];
        const std::string at = "domains[" + std::to_string(i) + "]";
        if (!d.is_object() || !d.contains("dims") || !d["dims"].is_array())
            throw_input(where, at + ".dims: expected a list");
        CriticalDomain domain;
        if (d.contains("name") && !d["name"].is_string()) throw_input(where, at + ".name: expected a string");
        domain.name = d.contains("name") ? d["name"].get<std::string>() : "domain " + std::to_string(i);
        for (size_t k = 0; k < d["dims"].size(); ++k)
            domain.dims.push_back(parse_dim(d["dims"][k], where, at + ".dims[" + std::to_string(k) + "]", n_embd));
        file.domains.push_back(std::move(domain));
    }
    return file;
}

CriticalFile read_critical(const std::string& path, int64_t n_embd) {
    return parse_critical(read_text_file(path), path, n_embd);
}

}  // namespace critdim::analysis
