// Plans built from scan statistics: single-dimension ablations, magnitude ranks, critical sets.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "critdim/analysis.hpp"
#include "critdim/eval.hpp"

namespace critdim::eval {

namespace {

size_t site_index(const analysis::Stats& s, const std::string& site) {
    const auto it = std::find(s.sites.begin(), s.sites.end(), site);
    if (it == s.sites.end())
        throw Error(ErrorKind::mismatch, s.header.name.empty() ? "stats" : s.header.name,
                    "no site '" + site + "' in the statistics (scan --point)");
    return static_cast<size_t>(it - s.sites.begin());
}

}  // namespace

std::vector<double> pooled_mean(const std::vector<const analysis::Stats*>& stats, const std::string& site) {
    if (stats.empty()) throw_usage("pooled_mean: no statistics");
    const int64_t n_embd = stats[0]->n_embd();
    std::vector<double> sum(static_cast<size_t>(n_embd), 0.0);
    int64_t count = 0;
    for (const analysis::Stats* s : stats) {
        if (s->n_embd() != n_embd)
            throw Error(ErrorKind::mismatch, s->header.name, "n_embd differs between statistics");
        const size_t i = site_index(*s, site);
        for (int64_t d = 0; d < n_embd; ++d) sum[static_cast<size_t>(d)] += s->s.sum[s->at(i, d)];
        count += s->count[i];
    }
    if (count == 0) throw Error(ErrorKind::input, stats[0]->header.name, "no tokens counted at " + site);
    for (double& v : sum) v /= static_cast<double>(count);
    return sum;
}

std::vector<int64_t> magnitude_ranking(const analysis::Stats& s, const std::string& point) {
    const int64_t n_embd = s.n_embd();
    std::vector<double> mag(static_cast<size_t>(n_embd), 0.0);
    bool any = false;
    for (size_t i = 0; i < s.n_sites(); ++i) {
        if (s.sites[i].rfind(point + ".", 0) != 0 || s.count[i] == 0) continue;
        any = true;
        for (int64_t d = 0; d < n_embd; ++d)
            mag[static_cast<size_t>(d)] =
                std::max(mag[static_cast<size_t>(d)], s.s.sum_abs[s.at(i, d)] / static_cast<double>(s.count[i]));
    }
    if (!any) throw Error(ErrorKind::mismatch, s.header.name, "no " + point + " sites in the statistics");
    std::vector<int64_t> order(static_cast<size_t>(n_embd));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return mag[static_cast<size_t>(a)] > mag[static_cast<size_t>(b)]; });
    return order;
}

steer::Plan ablation_plan(int64_t dim, int64_t n_layer, const analysis::Stats* mean_stats) {
    steer::Plan plan;
    plan.source = "ablate dim " + std::to_string(dim);
    steer::Intervention iv;
    iv.where = plan.source;
    iv.point = model::HookPoint::resid_post;
    for (int l = 0; l < n_layer; ++l) iv.layers.push_back(l);
    iv.all_dims = false;
    iv.dims = {dim};
    iv.op = mean_stats ? steer::Op::mean : steer::Op::zero;
    if (mean_stats) {
        iv.values.n_rows = n_layer, iv.values.n_cols = 1;
        for (int l = 0; l < n_layer; ++l)
            iv.values.data.push_back(static_cast<float>(
                pooled_mean({mean_stats}, "resid_post." + std::to_string(l))[static_cast<size_t>(dim)]));
    }
    plan.interventions.push_back(std::move(iv));
    return plan;
}

AblationResult run_ablation(McqScorer& scorer, const std::vector<McqQuestion>& questions,
                            const std::vector<int64_t>& dims, const analysis::Stats* mean_stats,
                            const std::vector<int64_t>& magnitude_order, bool progress) {
    const model::Model& m = scorer.context().model();
    AblationResult r;
    r.mode = mean_stats ? "mean" : "zero";
    auto overall = [&](const std::vector<McqScore>& sc) {
        int64_t c = 0;
        for (size_t i = 0; i < questions.size(); ++i) c += sc[i].predicted == questions[i].answer;
        return wilson(c, static_cast<int64_t>(questions.size()));
    };
    const std::vector<McqScore> base = scorer.score();
    for (const auto& s : accuracy_by_subject(questions, base)) {
        r.subjects.push_back(s.subject);
        r.baseline.push_back(s.accuracy);
    }
    r.baseline_overall = overall(base);
    Progress bar("ablate", static_cast<int64_t>(dims.size()), "dims", progress);
    for (int64_t dim : dims) {
        if (dim < 0 || dim >= m.hparams().n_embd)
            throw Error(
                ErrorKind::mismatch, "--dims",
                std::to_string(dim) + " is out of range (model has n_embd " + std::to_string(m.hparams().n_embd) + ")");
        std::vector<steer::Plan> plans = {ablation_plan(dim, m.hparams().n_layer, mean_stats)};
        steer::Steering steering(m, plans);
        steering.attach(scorer.context());
        const std::vector<McqScore> sc = scorer.score();
        steering.detach(scorer.context());
        AblationRow row;
        row.dim = dim;
        const auto it = std::find(magnitude_order.begin(), magnitude_order.end(), dim);
        row.magnitude_rank = it == magnitude_order.end() ? 0 : (it - magnitude_order.begin()) + 1;
        for (const auto& s : accuracy_by_subject(questions, sc)) row.per_subject.push_back(s.accuracy);
        row.overall = overall(sc);
        row.drop = r.baseline_overall.acc - row.overall.acc;
        r.rows.push_back(std::move(row));
        bar.update(static_cast<int64_t>(r.rows.size()));
    }
    bar.finish();
    std::stable_sort(r.rows.begin(), r.rows.end(), [](const AblationRow& a, const AblationRow& b) {
        return a.drop != b.drop ? a.drop > b.drop : a.dim < b.dim;
    });
    return r;
}

}  // namespace critdim::eval

namespace critdim::eval {

std::vector<std::pair<std::string, std::vector<int64_t>>> read_critical_dims(const std::string& path) {
    std::vector<std::pair<std::string, std::vector<int64_t>>> out;
    for (const analysis::CriticalDomain& d : analysis::read_critical(path).domains)
        out.emplace_back(d.name, d.dim_ids());
    return out;
}

double overlap(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    if (a.empty()) return 0.0;
    int64_t n = 0;
    for (int64_t x : a) n += std::find(b.begin(), b.end(), x) != b.end();
    return static_cast<double>(n) / static_cast<double>(a.size());
}

}  // namespace critdim::eval
