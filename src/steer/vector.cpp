// Steering vectors from scan statistics: the difference of means of two corpora per layer
// (whole-vector steering), the same masked to critical dimensions (Critical Dimension Steering),
// and the first principal direction of paired row differences (llama.cpp / repeng's PCA).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"
#include "critdim/steer.hpp"

namespace critdim::steer {

VectorMethod parse_vector_method(std::string_view text) {
    if (text == "mean") return VectorMethod::mean;
    if (text == "pca") return VectorMethod::pca;
    throw_usage("--method: '" + std::string(text) + "' is not mean or pca");
}

VectorNorm parse_vector_norm(std::string_view text) {
    if (text == "match-whole") return VectorNorm::match_whole;
    if (text == "unit") return VectorNorm::unit;
    if (text == "none") return VectorNorm::none;
    throw_usage("--norm: '" + std::string(text) + "' is not match-whole, unit or none");
}

namespace {

using nlohmann::json;

double norm2(const std::vector<double>& v) {
    double s = 0.0;
    for (const double x : v) s += x * x;
    return std::sqrt(s);
}

// The mask: dimensions of one domain of a critical.json file.
std::vector<int64_t> dims_from_critical(const std::string& path, const std::string& want_domain,
                                        const std::string& pos_name, int64_t n_embd) {
    const analysis::CriticalFile file = analysis::read_critical(path, n_embd);
    std::vector<std::string> names;
    for (const auto& d : file.domains) names.push_back(d.name);
    auto list = [&] {
        std::string s;
        for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
        return s;
    };
    size_t pick = names.size();
    const std::string target = !want_domain.empty() ? want_domain : names.size() == 1 ? names[0] : pos_name;
    for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == target) pick = i;
    if (pick == names.size()) {
        if (want_domain.empty())
            throw_usage(path + ": holds several domains (" + list() + "); choose one with --domain");
        throw_usage(path + ": no domain '" + target + "' (domains: " + list() + ")");
    }
    std::vector<int64_t> dims = file.domains[pick].dim_ids();
    if (dims.empty()) throw_input(path, "domain '" + target + "' has no dimensions (nothing passed the criterion)");
    return dims;
}

// First principal direction of the rows d_i (power iteration on sum_i d_i d_i^T, from the mean
// difference), signed so that the mean difference projects positively, and scaled to that mean
// projection so that it is comparable with the difference of means.
std::vector<double> principal_direction(const std::vector<std::vector<double>>& diffs, bool center) {
    const size_t E = diffs[0].size();
    std::vector<double> mean(E, 0.0);
    for (const auto& d : diffs)
        for (size_t i = 0; i < E; ++i) mean[i] += d[i] / static_cast<double>(diffs.size());
    std::vector<std::vector<double>> rows = diffs;
    if (center)
        for (auto& d : rows)
            for (size_t i = 0; i < E; ++i) d[i] -= mean[i];
    std::vector<double> v = norm2(mean) > 0 && !center ? mean : std::vector<double>(E, 1.0);
    std::vector<double> next(E);
    auto normalize = [](std::vector<double>& x) {
        const double n = norm2(x);
        if (n > 0)
            for (double& y : x) y /= n;
        return n;
    };
    normalize(v);
    for (int it = 0; it < 1000; ++it) {
        std::fill(next.begin(), next.end(), 0.0);
        for (const auto& d : rows) {
            double p = 0.0;
            for (size_t i = 0; i < E; ++i) p += d[i] * v[i];
            for (size_t i = 0; i < E; ++i) next[i] += p * d[i];
        }
        if (normalize(next) == 0.0) break;  // every difference is zero
        double change = 0.0;
        for (size_t i = 0; i < E; ++i) change = std::max(change, std::abs(next[i] - v[i]));
        v.swap(next);
        if (change < 1e-12) break;
    }
    double proj = 0.0;
    for (size_t i = 0; i < E; ++i) proj += mean[i] * v[i];
    if (proj < 0) {
        for (double& x : v) x = -x;
        proj = -proj;
    }
    for (double& x : v) x *= proj;
    return v;
}

const char* method_name(VectorMethod m) { return m == VectorMethod::mean ? "mean" : "pca"; }
const char* norm_name(VectorNorm n) {
    return n == VectorNorm::none ? "none" : n == VectorNorm::unit ? "unit" : "match-whole";
}

}  // namespace

Plan build_vector_plan(const VectorOptions& o, std::vector<VectorLayer>* layers_out) {
    const analysis::Stats pos = analysis::Stats::read(o.pos);
    const analysis::Stats neg = analysis::Stats::read(o.neg);
    if (pos.header.model_hash != neg.header.model_hash)
        throw Error(ErrorKind::mismatch, o.neg,
                    "model.hash differs from " + o.pos + "'s: the statistics come from different models");
    if (pos.sites != neg.sites) throw Error(ErrorKind::mismatch, o.neg, "sites differ from " + o.pos + "'s");
    const int64_t E = pos.n_embd();
    const auto n_layer = static_cast<int>(pos.header.n_layer);
    const int last = o.layer_last < 0 ? n_layer - 1 : o.layer_last;
    if (o.layer_first < 0 || o.layer_first > last || last >= n_layer)
        throw_usage("--layers: " + std::to_string(o.layer_first) + ".." + std::to_string(last) +
                    " is outside the model's " + std::to_string(n_layer) + " layers");

    std::vector<int64_t> dims = o.dims;
    if (!o.dims_path.empty()) dims = dims_from_critical(o.dims_path, o.domain, pos.header.name, E);
    for (const int64_t d : dims)
        if (d < 0 || d >= E)
            throw_usage("--dims: " + std::to_string(d) + " is outside the model's " + std::to_string(E) +
                        " dimensions");
    std::sort(dims.begin(), dims.end());
    dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
    const bool masked = !dims.empty();

    if (o.method == VectorMethod::pca) {
        for (const auto* st : {&pos, &neg})
            if (st->n_kept() == 0)
                throw_usage((st == &pos ? o.pos : o.neg) +
                            ": holds no rows; scan it with --keep-rows for --method pca");
        if (pos.n_kept() != neg.n_kept())
            throw Error(ErrorKind::mismatch, o.neg,
                        std::to_string(neg.n_kept()) + " rows, but " + o.pos + " has " + std::to_string(pos.n_kept()) +
                            ": --method pca pairs the i-th prompt of each (give both corpora the same length)");
    }

    Intervention iv;
    iv.where = "vector";
    iv.point = model::HookSite::parse(o.point + ".0").point;
    iv.all_dims = !masked;
    iv.dims = dims;
    iv.op = Op::add;
    iv.positions = o.positions;
    const int64_t n_cols = masked ? static_cast<int64_t>(dims.size()) : E;
    std::vector<VectorLayer> report;
    json per_layer = json::array();
    for (int layer = o.layer_first; layer <= last; ++layer) {
        const std::string site = o.point + "." + std::to_string(layer);
        const auto it = std::find(pos.sites.begin(), pos.sites.end(), site);
        if (it == pos.sites.end())
            throw_usage(o.pos + ": has no statistics at " + site + " (scan --points " + o.point + ")");
        const auto si = static_cast<size_t>(it - pos.sites.begin());
        std::vector<double> whole(static_cast<size_t>(E));
        if (o.method == VectorMethod::mean) {
            for (const auto* st : {&pos, &neg})
                if (st->count[si] == 0) throw_input(st == &pos ? o.pos : o.neg, "no tokens were counted at " + site);
            for (int64_t d = 0; d < E; ++d)
                whole[static_cast<size_t>(d)] = pos.s.sum[pos.at(si, d)] / static_cast<double>(pos.count[si]) -
                                                neg.s.sum[neg.at(si, d)] / static_cast<double>(neg.count[si]);
        } else {
            std::vector<std::vector<double>> diffs(static_cast<size_t>(pos.n_kept()),
                                                   std::vector<double>(static_cast<size_t>(E)));
            for (int64_t k = 0; k < pos.n_kept(); ++k) {
                const float* p = pos.kept_row(k, si);
                const float* n = neg.kept_row(k, si);
                for (int64_t d = 0; d < E; ++d)
                    diffs[static_cast<size_t>(k)][static_cast<size_t>(d)] = double{p[d]} - double{n[d]};
            }
            whole = principal_direction(diffs, o.center);
        }
        std::vector<double> v;
        if (masked)
            for (const int64_t d : dims) v.push_back(whole[static_cast<size_t>(d)]);
        else
            v = whole;
        VectorLayer r;
        r.layer = layer;
        r.whole_norm = norm2(whole);
        r.masked_norm = norm2(v);
        if (r.masked_norm > 0) {
            if (o.norm == VectorNorm::match_whole) r.scale = r.whole_norm / r.masked_norm;
            if (o.norm == VectorNorm::unit) r.scale = 1.0 / r.masked_norm;
        }
        iv.layers.push_back(layer);
        for (const double x : v) iv.values.data.push_back(static_cast<float>(x * r.scale));
        per_layer.push_back(
            {{"layer", layer}, {"whole_norm", r.whole_norm}, {"masked_norm", r.masked_norm}, {"scale", r.scale}});
        report.push_back(r);
    }
    iv.values.n_rows = static_cast<int64_t>(iv.layers.size());
    iv.values.n_cols = n_cols;

    Plan plan;
    plan.source = "vector";
    plan.model.arch = pos.header.model_arch;
    plan.model.n_embd = E;
    plan.model.n_layer = n_layer;
    plan.alpha = o.alpha;
    plan.interventions.push_back(std::move(iv));
    plan.comment = std::string(masked ? "Critical Dimension Steering" : "whole-vector steering") + ": " +
                   method_name(o.method) + " of " + pos.header.name + " minus " + neg.header.name;
    json prov = {{"tool", "critdim vector"},
                 {"critdim_version", CRITDIM_VERSION},
                 {"method", method_name(o.method)},
                 {"norm", norm_name(o.norm)},
                 {"pos", {{"file", o.pos}, {"name", pos.header.name}, {"docs", pos.header.n_docs}}},
                 {"neg", {{"file", o.neg}, {"name", neg.header.name}, {"docs", neg.header.n_docs}}},
                 {"model_hash", pos.header.model_hash},
                 {"policy", pos.header.policy},
                 {"layers", per_layer}};
    if (o.method == VectorMethod::pca) prov["center"] = o.center;
    if (!o.dims_path.empty()) prov["dims_from"] = o.dims_path;
    if (masked) prov["dims"] = dims;
    plan.provenance_json = prov.dump();
    if (layers_out) *layers_out = std::move(report);
    return plan;
}

}  // namespace critdim::steer
