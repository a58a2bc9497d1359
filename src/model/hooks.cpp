// Hook sites and their registry. Sites are indexed densely: embed, then four per block
// (resid_pre, attn_out, mlp_out, resid_post), then final_norm.
#include <charconv>

#include "critdim/model.hpp"

namespace critdim::model {

const char* hook_point_name(HookPoint p) {
    switch (p) {
        case HookPoint::embed:
            return "embed";
        case HookPoint::resid_pre:
            return "resid_pre";
        case HookPoint::attn_out:
            return "attn_out";
        case HookPoint::mlp_out:
            return "mlp_out";
        case HookPoint::resid_post:
            return "resid_post";
        case HookPoint::final_norm:
            return "final_norm";
    }
    return "?";
}

static bool per_layer(HookPoint p) { return p != HookPoint::embed && p != HookPoint::final_norm; }

std::string HookSite::name() const {
    std::string s = hook_point_name(point);
    if (per_layer(point)) s += "." + std::to_string(layer);
    return s;
}

HookSite HookSite::parse(std::string_view text) {
    const size_t dot = text.find('.');
    const std::string_view head = text.substr(0, dot);
    for (HookPoint p : {HookPoint::embed, HookPoint::resid_pre, HookPoint::attn_out, HookPoint::mlp_out,
                        HookPoint::resid_post, HookPoint::final_norm}) {
        if (head != hook_point_name(p)) continue;
        if (!per_layer(p)) {
            if (dot != std::string_view::npos) break;
            return {p, -1};
        }
        if (dot == std::string_view::npos) break;
        int layer = -1;
        const std::string_view num = text.substr(dot + 1);
        auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), layer);
        if (ec != std::errc() || ptr != num.data() + num.size() || layer < 0) break;
        return {p, layer};
    }
    throw_usage("hook site '" + std::string(text) +
                "' is not one of embed, resid_pre.L, attn_out.L, mlp_out.L, resid_post.L, final_norm");
}

Hooks::Hooks(int n_layer) : n_layer_(n_layer), sites_(static_cast<size_t>(2 + 4 * n_layer)) {}

void Hooks::check(HookSite site) const {
    if (per_layer(site.point) && (site.layer < 0 || site.layer >= n_layer_))
        throw Error(ErrorKind::mismatch, "hook " + site.name(),
                    "layer " + std::to_string(site.layer) + " is out of range (model has " + std::to_string(n_layer_) +
                        " layers)");
}

size_t Hooks::index(HookSite site) const {
    switch (site.point) {
        case HookPoint::embed:
            return 0;
        case HookPoint::final_norm:
            return static_cast<size_t>(1 + 4 * n_layer_);
        case HookPoint::resid_pre:
            return static_cast<size_t>(1 + 4 * site.layer);
        case HookPoint::attn_out:
            return static_cast<size_t>(2 + 4 * site.layer);
        case HookPoint::mlp_out:
            return static_cast<size_t>(3 + 4 * site.layer);
        case HookPoint::resid_post:
            return static_cast<size_t>(4 + 4 * site.layer);
    }
    return 0;
}

HookId Hooks::add(HookSite site, Entry entry) {
    check(site);
    auto& list = sites_[index(site)];
    // Interventions run before observers; within each kind, registration order.
    if (entry.writes) {
        auto it = list.begin();
        while (it != list.end() && it->writes) ++it;
        list.insert(it, std::move(entry));
    } else {
        list.push_back(std::move(entry));
    }
    ++n_registered_;
    return next_id_ - 1;
}

HookId Hooks::observe(HookSite site, ObserverFn fn) { return add(site, {next_id_++, false, std::move(fn), nullptr}); }

HookId Hooks::intervene(HookSite site, InterventionFn fn) {
    return add(site, {next_id_++, true, nullptr, std::move(fn)});
}

std::vector<HookId> Hooks::observe_all_layers(HookPoint point, const ObserverFn& fn) {
    std::vector<HookId> ids;
    if (!per_layer(point)) {
        ids.push_back(observe({point, -1}, fn));
        return ids;
    }
    for (int l = 0; l < n_layer_; ++l) ids.push_back(observe({point, l}, fn));
    return ids;
}

void Hooks::remove(HookId id) {
    for (auto& list : sites_) {
        for (auto it = list.begin(); it != list.end(); ++it) {
            if (it->id == id) {
                list.erase(it);
                --n_registered_;
                return;
            }
        }
    }
}

void Hooks::clear() {
    for (auto& list : sites_) list.clear();
    n_registered_ = 0;
}

void Hooks::run(const Rows& rows) const {
    const auto& list = sites_[index(rows.site)];
    for (const Entry& e : list) {
        if (e.writes) {
            e.intervention(rows);
        } else {
            ConstRows view{rows.site, rows.data, rows.n_rows, rows.n_embd, rows.tokens, rows.positions, rows.seq_ids};
            e.observer(view);
        }
    }
}

}  // namespace critdim::model
