// Conversions the binding shares: token ids, hook-site patterns, JSON through Python's json
// module, and NumPy arrays.
#include <pybind11/stl.h>

#include "bindings.hpp"

namespace critdim::python {

std::vector<int32_t> token_ids(PyModel& pm, py::handle tokens) {
    if (py::isinstance<py::str>(tokens)) return pm.tokenizer().encode(tokens.cast<std::string>(), true, false);
    if (py::isinstance<py::array>(tokens)) {
        // Any integer dtype, any shape that is one row.
        const auto a = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(tokens);
        if (!a || a.ndim() != 1) throw_usage("tokens: a NumPy array of token ids must be 1-D integers");
        return {a.data(), a.data() + a.size()};
    }
    return tokens.cast<std::vector<int32_t>>();
}

SitePattern parse_site_pattern(const std::string& text) {
    std::string name = text;
    if (name.size() > 2 && name.compare(name.size() - 2, 2, ".*") == 0) name.resize(name.size() - 2);
    if (name == "embed" || name == "final_norm" || name.find('.') != std::string::npos) {
        const model::HookSite site = model::HookSite::parse(name);
        return {site.point, false, site};
    }
    // A per-layer point without a layer means every layer (as `critdim dump --points`).
    const model::HookSite probe = model::HookSite::parse(name + ".0");
    return {probe.point, true, probe};
}

std::vector<model::HookSite> expand(const SitePattern& p, int n_layer) {
    if (!p.every_layer) return {p.site};
    std::vector<model::HookSite> sites;
    for (int l = 0; l < n_layer; ++l) sites.push_back({p.point, l});
    return sites;
}

std::vector<std::string> string_list(py::handle str_or_list) {
    if (str_or_list.is_none()) return {};
    if (py::isinstance<py::str>(str_or_list)) return {str_or_list.cast<std::string>()};
    return str_or_list.cast<std::vector<std::string>>();
}

nlohmann::json to_json(py::handle obj) {
    const std::string text = py::module_::import("json").attr("dumps")(obj).cast<std::string>();
    return nlohmann::json::parse(text);
}

py::object from_json(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

py::array_t<float> new_float_array(const std::vector<py::ssize_t>& shape) { return py::array_t<float>(shape); }

}  // namespace critdim::python
