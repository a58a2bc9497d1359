// Plans checked against one model and compiled into per-site steps, run as interventions.
// Every vector is precomputed here (alpha folded in), so a forward pass pays a few vector
// operations per steered site and row; consecutive `add` steps at a site are summed into one
// vector first, as llama.cpp sums the directions of one block before adding them.
#include <algorithm>
#include <cmath>
#include <limits>

#include "critdim/steer.hpp"
#include "steer/compile.hpp"

namespace critdim::steer {

namespace {

bool per_layer(model::HookPoint p) { return p != model::HookPoint::embed && p != model::HookPoint::final_norm; }

[[noreturn]] void mismatch(const std::string& where, const std::string& what) {
    throw Error(ErrorKind::mismatch, where, what);
}

void check_model(const Plan& plan, const model::HParams& hp) {
    const std::string where = plan.source + ": model.";
    if (plan.model.arch && *plan.model.arch != hp.arch)
        mismatch(where + "arch", "the plan is for '" + *plan.model.arch + "', the model is '" + hp.arch + "'");
    if (plan.model.n_embd && *plan.model.n_embd != hp.n_embd)
        mismatch(where + "n_embd", "the plan is for n_embd " + std::to_string(*plan.model.n_embd) + ", the model has " +
                                       std::to_string(hp.n_embd));
    if (plan.model.n_layer && *plan.model.n_layer != hp.n_layer)
        mismatch(where + "n_layer", "the plan is for " + std::to_string(*plan.model.n_layer) +
                                        " layers, the model has " + std::to_string(hp.n_layer));
}

// The row of values for the layer at `layer_index` in the intervention's list.
std::vector<float> row_of(const Values& v, int64_t layer_index) {
    const float* r = v.row(layer_index);
    return std::vector<float>(r, r + v.n_cols);
}

void check_values(const Values& v, const Intervention& iv, const char* field, int64_t n_embd, int64_t n_layers) {
    if (v.empty()) return;
    if (iv.all_dims && v.n_cols != n_embd)
        mismatch(iv.where + "." + field, std::to_string(v.n_cols) + " values per row, the model has n_embd " +
                                             std::to_string(n_embd));
    if (v.n_rows > 1 && v.n_rows != n_layers)
        mismatch(iv.where + "." + field,
                 std::to_string(v.n_rows) + " rows for " + std::to_string(n_layers) + " layers");
}

}  // namespace

std::vector<SiteSteps> compile_plans(const model::HParams& hp, std::span<const Plan> plans,
                                     std::optional<double> alpha_override, std::vector<std::string>* notes) {
    std::vector<SiteSteps> sites;
    auto site_steps = [&](model::HookSite site) -> std::vector<Step>& {
        for (SiteSteps& s : sites)
            if (s.site == site) return s.steps;
        sites.push_back({site, {}});
        return sites.back().steps;
    };
    for (const Plan& plan : plans) {
        check_model(plan, hp);
        const double plan_alpha = alpha_override ? *alpha_override : plan.alpha;
        for (const Intervention& iv : plan.interventions) {
            for (int64_t d : iv.dims)
                if (d >= hp.n_embd)
                    mismatch(iv.where + ".dims", std::to_string(d) + " is out of range (model has n_embd " +
                                                     std::to_string(hp.n_embd) + ")");
            std::vector<int> layers = iv.layers;
            if (iv.all_layers) {
                layers.clear();
                for (int l = 0; l < hp.n_layer; ++l) layers.push_back(l);
            }
            const auto n_listed = static_cast<int64_t>(layers.size());
            check_values(iv.values, iv, "values", hp.n_embd, n_listed);
            check_values(iv.min, iv, "min", hp.n_embd, n_listed);
            check_values(iv.max, iv, "max", hp.n_embd, n_listed);

            const double a = plan_alpha * iv.alpha;
            const auto alpha = static_cast<float>(a);
            if (!std::isfinite(alpha))
                mismatch(iv.where + ".alpha", "alpha " + std::to_string(a) + " is not a finite float32");
            for (int64_t li = 0; li < n_listed; ++li) {
                const int layer = layers[static_cast<size_t>(li)];
                if (per_layer(iv.point) && layer >= hp.n_layer) {
                    const std::string what = std::to_string(layer) + " is out of range (model has " +
                                             std::to_string(hp.n_layer) + " layers)";
                    if (iv.beyond_model == BeyondModel::error) mismatch(iv.where + ".layers", what);
                    if (notes) notes->push_back(iv.where + ".layers: " + what + "; ignored (beyond_model: ignore)");
                    continue;
                }
                Step step;
                step.op = iv.op;
                step.positions = iv.positions;
                step.alpha = alpha;
                if (!iv.all_dims)
                    for (int64_t d : iv.dims) step.dims.push_back(static_cast<int32_t>(d));
                const size_t n = iv.all_dims ? static_cast<size_t>(hp.n_embd) : iv.dims.size();
                switch (iv.op) {
                    case Op::add:
                        step.v.assign(n, 0.0f);
                        for (size_t j = 0; j < n; ++j) step.v[j] += alpha * iv.values.row(li)[j];
                        break;
                    case Op::set:
                    case Op::mean:
                        step.v = row_of(iv.values, li);
                        break;
                    case Op::scale:  // the factor (1-a) + a*v; a = 1 gives exactly v
                        step.v.resize(n);
                        for (size_t j = 0; j < n; ++j) step.v[j] = (1.0f - alpha) + alpha * iv.values.row(li)[j];
                        break;
                    case Op::clamp:
                        step.lo.assign(n, -std::numeric_limits<float>::infinity());
                        step.hi.assign(n, std::numeric_limits<float>::infinity());
                        if (!iv.min.empty()) step.lo = row_of(iv.min, li);
                        if (!iv.max.empty()) step.hi = row_of(iv.max, li);
                        for (size_t j = 0; j < n; ++j)
                            if (step.lo[j] > step.hi[j])
                                mismatch(iv.where + ".min",
                                         "min " + std::to_string(step.lo[j]) + " exceeds max " +
                                             std::to_string(step.hi[j]) + " at value " + std::to_string(j));
                        break;
                    case Op::zero:
                        break;
                }
                const model::HookSite site{iv.point, per_layer(iv.point) ? layer : -1};
                std::vector<Step>& steps = site_steps(site);
                if (step.op == Op::add && !steps.empty() && steps.back().op == Op::add &&
                    steps.back().positions == step.positions) {
                    merge_add(steps.back(), step, hp.n_embd);
                } else {
                    steps.push_back(std::move(step));
                }
            }
        }
    }
    std::erase_if(sites, [](const SiteSteps& s) { return s.steps.empty(); });
    return sites;
}

void merge_add(Step& into, const Step& add, int64_t n_embd) {
    if (into.dims.empty() && add.dims.empty()) {
        for (size_t j = 0; j < into.v.size(); ++j) into.v[j] += add.v[j];
        return;
    }
    std::vector<float> dense(static_cast<size_t>(n_embd), 0.0f);
    auto scatter = [&](const Step& s) {
        if (s.dims.empty())
            for (size_t j = 0; j < dense.size(); ++j) dense[j] += s.v[j];
        else
            for (size_t k = 0; k < s.dims.size(); ++k) dense[static_cast<size_t>(s.dims[k])] += s.v[k];
    };
    scatter(into);
    scatter(add);
    into.dims.clear();
    into.v = std::move(dense);
}

// ---------------------------------------------------------------------------------------------

struct Steering::State {
    std::vector<SiteSteps> sites;
    std::vector<int64_t> prompt_length;  // per sequence; absent: unknown (every row is prompt)
    std::vector<int32_t> sequences;      // rows of these sequences only; empty: every row
    std::vector<std::string> notes;

    bool selected(const PositionPolicy& p, int32_t position, int32_t seq) const {
        switch (p.kind) {
            case Positions::all: return true;
            case Positions::skip_bos: return position != 0;
            case Positions::from: return position >= p.from;
            case Positions::prompt:
            case Positions::generated: {
                const bool known = seq >= 0 && static_cast<size_t>(seq) < prompt_length.size();
                const int64_t n = known ? prompt_length[static_cast<size_t>(seq)] : std::numeric_limits<int64_t>::max();
                return (position < n) == (p.kind == Positions::prompt);
            }
        }
        return false;
    }

    bool steers(int32_t seq) const {
        return sequences.empty() || std::find(sequences.begin(), sequences.end(), seq) != sequences.end();
    }

    void run(size_t site_index, const model::Rows& rows) const {
        for (const Step& step : sites[site_index].steps) {
            for (int64_t r = 0; r < rows.n_rows; ++r) {
                if (!steers(rows.seq_ids[static_cast<size_t>(r)])) continue;
                if (step.positions.kind != Positions::all &&
                    !selected(step.positions, rows.positions[static_cast<size_t>(r)], rows.seq_ids[static_cast<size_t>(r)]))
                    continue;
                apply_step(step, rows.row(r), rows.n_embd);
            }
        }
    }
};

void apply_step(const Step& s, float* x, int64_t n_embd) {
    const bool dense = s.dims.empty();
    const int64_t n = dense ? n_embd : static_cast<int64_t>(s.dims.size());
    const int32_t* dims = s.dims.data();
    auto at = [&](int64_t k) -> float& { return dense ? x[k] : x[dims[k]]; };
    const float a = s.alpha, keep = 1.0f - s.alpha;
    switch (s.op) {
        case Op::add:
            if (dense)
                for (int64_t k = 0; k < n; ++k) x[k] += s.v[static_cast<size_t>(k)];
            else
                for (int64_t k = 0; k < n; ++k) x[dims[k]] += s.v[static_cast<size_t>(k)];
            break;
        case Op::set:
        case Op::mean:
            for (int64_t k = 0; k < n; ++k)
                at(k) = a == 1.0f ? s.v[static_cast<size_t>(k)] : keep * at(k) + a * s.v[static_cast<size_t>(k)];
            break;
        case Op::scale:
            for (int64_t k = 0; k < n; ++k) at(k) *= s.v[static_cast<size_t>(k)];
            break;
        case Op::clamp:
            for (int64_t k = 0; k < n; ++k) {
                const float t = std::min(std::max(at(k), s.lo[static_cast<size_t>(k)]), s.hi[static_cast<size_t>(k)]);
                at(k) = a == 1.0f ? t : keep * at(k) + a * t;
            }
            break;
        case Op::zero:
            for (int64_t k = 0; k < n; ++k) at(k) = a == 1.0f ? 0.0f : keep * at(k);
            break;
    }
}

Steering::Steering(const model::Model& model, std::span<const Plan> plans, const Options& options)
    : state_(std::make_shared<State>()) {
    state_->sites = compile_plans(model.hparams(), plans, options.alpha, &state_->notes);
}

Steering::~Steering() = default;
Steering::Steering(Steering&&) noexcept = default;
Steering& Steering::operator=(Steering&&) noexcept = default;

void Steering::attach(model::Context& ctx) {
    detach(ctx);
    for (size_t i = 0; i < state_->sites.size(); ++i) {
        // The hook shares the state, so it stays valid whatever is destroyed first.
        std::shared_ptr<const State> state = state_;
        hook_ids_.push_back(ctx.hooks().intervene(state_->sites[i].site,
                                                  [state, i](const model::Rows& rows) { state->run(i, rows); }));
    }
}

void Steering::detach(model::Context& ctx) {
    for (model::HookId id : hook_ids_) ctx.hooks().remove(id);
    hook_ids_.clear();
}

void Steering::set_prompt_length(int32_t seq, int64_t n) {
    if (seq < 0) throw_usage("steering: sequence id " + std::to_string(seq) + " is negative");
    auto& v = state_->prompt_length;
    if (static_cast<size_t>(seq) >= v.size()) v.resize(static_cast<size_t>(seq) + 1, std::numeric_limits<int64_t>::max());
    v[static_cast<size_t>(seq)] = n;
}

void Steering::clear_prompt_lengths() { state_->prompt_length.clear(); }

void Steering::set_sequences(std::vector<int32_t> seqs) { state_->sequences = std::move(seqs); }

int Steering::n_sites() const { return static_cast<int>(state_->sites.size()); }

std::vector<std::string> Steering::describe() const {
    std::vector<std::string> out;
    for (const SiteSteps& s : state_->sites)
        for (const Step& step : s.steps)
            out.push_back(s.site.name() + ": " + op_name(step.op) + " dims " +
                          (step.dims.empty() ? std::string("all") : std::to_string(step.dims.size())) + " positions " +
                          position_policy_name(step.positions));
    return out;
}

const std::vector<std::string>& Steering::notes() const { return state_->notes; }

}  // namespace critdim::steer
