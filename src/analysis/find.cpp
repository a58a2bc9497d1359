// The critical-dimension criteria over stats files: `paper` (3-sigma activity frequency gap,
// then magnitude), `massive` (Sun et al.) and `ratio` (mean |x| in the domain over the rest).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"

namespace critdim::analysis {

namespace {

constexpr const char* kCriteria[] = {"paper", "massive", "ratio"};

// The sites of `point` in a stats file, and the point's index for active_any.
struct PointSites {
    std::vector<size_t> sites;
    std::vector<int> layers;
    size_t point = 0;
};

PointSites point_sites(const Stats& st, const std::string& point, const std::string& path) {
    PointSites ps;
    const auto it = std::find(st.points.begin(), st.points.end(), point);
    if (it == st.points.end()) throw Error(ErrorKind::mismatch, path, "has no statistics for point '" + point + "'");
    ps.point = static_cast<size_t>(it - st.points.begin());
    for (size_t i = 0; i < st.sites.size(); ++i) {
        const std::string& s = st.sites[i];
        if (s.substr(0, s.find('.')) != point) continue;
        ps.sites.push_back(i);
        const model::HookSite hs = model::HookSite::parse(s);
        ps.layers.push_back(hs.layer);
    }
    return ps;
}

double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

// Frequencies are ratios of counts: 0.7 - 0.4 must pass a 0.3 gap despite rounding.
constexpr double kGapSlack = 1e-12;

}  // namespace

const char* criterion_name(Criterion c) { return kCriteria[static_cast<int>(c)]; }

Criterion parse_criterion(std::string_view text) {
    for (int i = 0; i < 3; ++i)
        if (text == kCriteria[i]) return static_cast<Criterion>(i);
    throw_usage("--criterion: '" + std::string(text) + "' is not one of paper, massive, ratio");
}

std::vector<DomainResult> find_critical(const std::vector<std::pair<std::string, Stats>>& domains,
                                        const std::vector<std::pair<std::string, Stats>>& others,
                                        const FindOptions& opt) {
    if (domains.empty()) throw_usage("find: no --domain given");
    if (opt.k < 1) throw_usage("--k must be at least 1");
    std::vector<const std::pair<std::string, Stats>*> all;
    for (const auto& d : domains) all.push_back(&d);
    for (const auto& o : others) all.push_back(&o);
    const Stats& first = all.front()->second;
    for (const auto* f : all) {
        const StatsHeader& h = f->second.header;
        auto same = [&](const char* field, const auto& a, const auto& b) {
            if (a != b)
                throw Error(ErrorKind::mismatch, f->first,
                            std::string(field) + " differs from " + all.front()->first + "'s");
        };
        same("model.hash", h.model_hash, first.header.model_hash);
        same("sites", f->second.sites, first.sites);
        same("policy", h.policy, first.header.policy);
        same("sigma.axis", h.sigma_axis, first.header.sigma_axis);
        same("sigma.k", h.sigma_k, first.header.sigma_k);
        if (h.n_docs <= 0) throw_input(f->first, "counts no documents");
    }
    if (opt.criterion != Criterion::massive && all.size() < 2)
        throw_usage("find: --criterion " + std::string(criterion_name(opt.criterion)) +
                    " compares domains; give --vs or a second --domain");

    const PointSites ps = point_sites(first, opt.point, all.front()->first);
    const int64_t E = first.n_embd();
    const auto n_sites = ps.sites.size();

    std::vector<DomainResult> results;
    for (size_t di = 0; di < domains.size(); ++di) {
        const Stats& D = domains[di].second;
        std::vector<const Stats*> rest;
        for (const auto* f : all)
            if (f != &domains[di]) rest.push_back(&f->second);

        int64_t rest_docs = 0;
        for (const Stats* r : rest) rest_docs += r->header.n_docs;

        std::vector<DimScore> scored;
        for (int64_t d = 0; d < E; ++d) {
            DimScore s;
            s.dim = d;
            // Activity frequency at any layer of the point (METHOD 7.4), domain vs the rest.
            const size_t ai = ps.point * static_cast<size_t>(E) + static_cast<size_t>(d);
            s.freq_domain = safe_div(static_cast<double>(D.active_any[ai]), static_cast<double>(D.header.n_docs));
            int64_t rest_active = 0;
            double min_pair_gap = INFINITY;
            for (const Stats* r : rest) {
                rest_active += r->active_any[ai];
                const double f = safe_div(static_cast<double>(r->active_any[ai]), static_cast<double>(r->header.n_docs));
                min_pair_gap = std::min(min_pair_gap, opt.gap_positive ? s.freq_domain - f : std::fabs(s.freq_domain - f));
            }
            s.freq_rest = safe_div(static_cast<double>(rest_active), static_cast<double>(rest_docs));
            const double pooled_gap = opt.gap_positive ? s.freq_domain - s.freq_rest : std::fabs(s.freq_domain - s.freq_rest);
            s.gap = opt.pairwise ? min_pair_gap : pooled_gap;

            // Per layer: magnitudes, ratio, maxima, massive hits.
            double mag_pool = 0.0, rest_pool = 0.0, ratio_pool = 0.0;
            std::vector<int> paper_layers, ratio_layers, massive_layers;
            for (size_t k = 0; k < n_sites; ++k) {
                const size_t i = D.at(ps.sites[k], d);
                const double mag = safe_div(D.s.sum_abs[i], static_cast<double>(D.count[ps.sites[k]]));
                double rest_sum = 0.0;
                int64_t rest_count = 0;
                double layer_gap = INFINITY;
                int64_t rest_layer_active = 0;
                const double fd = safe_div(static_cast<double>(D.s.active_docs[i]), static_cast<double>(D.header.n_docs));
                for (const Stats* r : rest) {
                    rest_sum += r->s.sum_abs[i];
                    rest_count += r->count[ps.sites[k]];
                    rest_layer_active += r->s.active_docs[i];
                    const double fr = safe_div(static_cast<double>(r->s.active_docs[i]), static_cast<double>(r->header.n_docs));
                    layer_gap = std::min(layer_gap, opt.gap_positive ? fd - fr : std::fabs(fd - fr));
                }
                const double fr_pool = safe_div(static_cast<double>(rest_layer_active), static_cast<double>(rest_docs));
                if (!opt.pairwise) layer_gap = opt.gap_positive ? fd - fr_pool : std::fabs(fd - fr_pool);
                const double rest_mag = safe_div(rest_sum, static_cast<double>(rest_count));
                const double ratio = rest_mag > 0 ? mag / rest_mag : (mag > 0 ? INFINITY : 0.0);
                if (opt.layer_mean) {
                    mag_pool += mag / static_cast<double>(n_sites);
                    rest_pool += rest_mag / static_cast<double>(n_sites);
                    ratio_pool += ratio / static_cast<double>(n_sites);
                } else {
                    mag_pool = std::max(mag_pool, mag);
                    rest_pool = std::max(rest_pool, rest_mag);
                    ratio_pool = std::max(ratio_pool, ratio);
                }
                if (layer_gap + kGapSlack >= opt.gap) paper_layers.push_back(ps.layers[k]);
                if (ratio >= opt.min_ratio) ratio_layers.push_back(ps.layers[k]);
                if (D.s.massive_tokens[i] > 0) massive_layers.push_back(ps.layers[k]);
                s.massive_tokens += D.s.massive_tokens[i];
                s.massive_first += D.s.massive_first[i];
                if (D.s.max_abs[i] > s.max_abs) {
                    s.max_abs = D.s.max_abs[i];
                    s.max_token = D.s.max_token[i];
                    s.max_pos = D.s.max_pos[i];
                    s.max_doc = D.s.max_doc[i];
                }
            }
            s.mean_abs_domain = mag_pool;
            s.mean_abs_rest = rest_pool;
            s.ratio = ratio_pool;

            bool candidate = false;
            switch (opt.criterion) {
                case Criterion::paper:
                    candidate = s.gap + kGapSlack >= opt.gap;
                    s.score = s.mean_abs_domain;
                    s.layers = paper_layers;
                    break;
                case Criterion::massive:
                    candidate = s.massive_tokens > 0;
                    s.score = s.max_abs;
                    s.layers = massive_layers;
                    break;
                case Criterion::ratio:
                    candidate = true;
                    s.score = s.ratio;
                    s.layers = ratio_layers;
                    break;
            }
            if (candidate) scored.push_back(std::move(s));
        }
        DomainResult res;
        res.name = D.header.name;
        res.stats_path = domains[di].first;
        res.n_docs = D.header.n_docs;
        res.n_candidates = static_cast<int64_t>(scored.size());
        std::stable_sort(scored.begin(), scored.end(), [](const DimScore& a, const DimScore& b) { return a.score > b.score; });
        if (static_cast<int64_t>(scored.size()) > opt.k) scored.resize(static_cast<size_t>(opt.k));
        res.dims = std::move(scored);
        results.push_back(std::move(res));
    }
    return results;
}

// "NAME=FILE" names the domain; a bare FILE keeps the name recorded in it.
std::pair<std::string, Stats> read_domain_stats(const std::string& arg) {
    const size_t eq = arg.find('=');
    const bool named = eq != std::string::npos && eq > 0 && arg.find('/') > eq;
    const std::string file = named ? arg.substr(eq + 1) : arg;
    Stats st = Stats::read(file);
    if (!st.header.complete) throw_input(file, "is a checkpoint of an unfinished scan, not a stats file");
    if (named) st.header.name = arg.substr(0, eq);
    return {file, std::move(st)};
}

std::string critical_json(const std::vector<DomainResult>& results, const FindOptions& opt, const Stats& any) {
    using nlohmann::json;
    auto finite = [](double v) -> json { return std::isfinite(v) ? json(v) : json(nullptr); };
    json j;
    j["format"] = "critdim.critical";
    j["version"] = 1;
    j["critdim_version"] = CRITDIM_VERSION;
    j["criterion"] = criterion_name(opt.criterion);
    j["parameters"] = {{"k", opt.k},
                       {"gap", opt.gap},
                       {"gap_sign", opt.gap_positive ? "positive" : "abs"},
                       {"rest", opt.pairwise ? "pairwise" : "pooled"},
                       {"point", opt.point},
                       {"layer_pool", opt.layer_mean ? "mean" : "max"},
                       {"min_ratio", opt.min_ratio},
                       {"policy", any.header.policy},
                       {"sigma_axis", any.header.sigma_axis},
                       {"sigma_k", any.header.sigma_k},
                       {"massive_abs", any.header.massive_abs},
                       {"massive_ratio", any.header.massive_ratio}};
    j["model"] = {{"hash", any.header.model_hash}, {"arch", any.header.model_arch}, {"n_embd", any.header.n_embd},
                  {"n_layer", any.header.n_layer}, {"path", any.header.model_path}};
    json domains = json::array();
    for (const DomainResult& r : results) {
        json dims = json::array();
        int rank = 1;
        for (const DimScore& s : r.dims) {
            dims.push_back({{"dim", s.dim},
                            {"rank", rank++},
                            {"score", finite(s.score)},
                            {"layers", s.layers},
                            {"scores",
                             {{"freq_domain", s.freq_domain},
                              {"freq_rest", s.freq_rest},
                              {"gap", finite(s.gap)},
                              {"mean_abs_domain", s.mean_abs_domain},
                              {"mean_abs_rest", s.mean_abs_rest},
                              {"ratio", finite(s.ratio)},
                              {"max_abs", s.max_abs},
                              {"massive_tokens", s.massive_tokens},
                              {"massive_first", s.massive_first}}},
                            {"max_at", {{"doc", s.max_doc}, {"pos", s.max_pos}, {"token", s.max_token}}}});
        }
        domains.push_back({{"name", r.name},
                           {"stats", r.stats_path},
                           {"n_docs", r.n_docs},
                           {"n_candidates", r.n_candidates},
                           {"dims", dims}});
    }
    j["domains"] = domains;
    return j.dump(2) + "\n";
}

std::string critical_table(const std::vector<DomainResult>& results, const FindOptions& opt) {
    std::string out;
    char line[512];
    for (const DomainResult& r : results) {
        std::snprintf(line, sizeof line, "%s (%lld docs, criterion %s, %lld candidates)\n", r.name.c_str(),
                      static_cast<long long>(r.n_docs), criterion_name(opt.criterion),
                      static_cast<long long>(r.n_candidates));
        out += line;
        out += "rank    dim      score  freq_dom freq_rest   mean|x|  rest|x|    ratio     max|x|  massive(pos0)  layers\n";
        int rank = 1;
        for (const DimScore& s : r.dims) {
            std::string layers;
            for (size_t i = 0; i < s.layers.size(); ++i) {
                if (i == 8) {
                    layers += ",...(" + std::to_string(s.layers.size()) + ")";
                    break;
                }
                layers += (i ? "," : "") + std::to_string(s.layers[i]);
            }
            std::snprintf(line, sizeof line, "%4d %6lld %10.4g %9.3f %9.3f %9.4g %8.4g %8.4g %10.4g %7lld(%lld)  %s\n",
                          rank++, static_cast<long long>(s.dim), s.score, s.freq_domain, s.freq_rest, s.mean_abs_domain,
                          s.mean_abs_rest, s.ratio, s.max_abs, static_cast<long long>(s.massive_tokens),
                          static_cast<long long>(s.massive_first), layers.empty() ? "-" : layers.c_str());
            out += line;
        }
        if (r.dims.empty()) out += "   (no dimension passes the criterion)\n";
        out += "\n";
    }
    return out;
}

}  // namespace critdim::analysis
