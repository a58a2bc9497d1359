// critdim.Plan: a steering plan (docs/steering.md) from a file, JSON text, a dict, vectors or a
// llama.cpp control vector. Every form goes through the library's parser and its checks.
#include <filesystem>

#include "bindings.hpp"

namespace critdim::python {

namespace {

const char* kPlanFormatLiteral = "critdim-steering-plan";

steer::Plan plan_from_json(const nlohmann::json& j, const std::string& source, const std::string& base_dir) {
    return steer::parse_plan(j.dump(), source, base_dir);
}

// A file name, JSON text, or a dict.
steer::Plan plan_from_any(py::handle obj, const std::string& base_dir) {
    if (py::isinstance<py::str>(obj)) {
        const std::string text = obj.cast<std::string>();
        const size_t first = text.find_first_not_of(" \t\r\n");
        if (first != std::string::npos && text[first] == '{') return steer::parse_plan(text, "plan", base_dir);
        return steer::load_plan(text);
    }
    if (py::isinstance<py::dict>(obj)) return plan_from_json(to_json(obj), "plan", base_dir);
    throw_usage("Plan: give a file name, JSON text or a dict");
}

// {"from": N} and the names, as the plan file writes them.
nlohmann::json json_of(py::handle obj) { return obj.is_none() ? nlohmann::json("all") : to_json(obj); }

}  // namespace

std::vector<steer::Plan> plans_of(py::handle steer) {
    if (steer.is_none()) return {};
    if (py::isinstance<steer::Plan>(steer)) return {steer.cast<steer::Plan>()};
    std::vector<steer::Plan> plans;
    for (py::handle p : steer) {
        if (!py::isinstance<steer::Plan>(p)) throw_usage("steer: expected a critdim.Plan or a list of them");
        plans.push_back(p.cast<steer::Plan>());
    }
    return plans;
}

void bind_plan(py::module_& m) {
    using namespace pybind11::literals;
    py::class_<steer::Plan> cls(m, "Plan", R"(A steering plan (docs/steering.md): interventions on the residual stream.

    critdim.Plan("plan.json")                 # a file
    critdim.Plan({"format": "critdim-steering-plan", "version": 1, "interventions": [...]})
    critdim.Plan.from_vectors({10: v10, 11: v11}, dims=[334, 1046])
    critdim.Plan.from_cvector("cv.gguf", scale=0.8, layer_range=(1, 20))
)");
    cls.def(py::init([](py::handle source, const std::string& base_dir) { return plan_from_any(source, base_dir); }),
            "source"_a, "base_dir"_a = ".",
            "A plan from a file name, JSON text or a dict (value files are found relative to base_dir for text "
            "and dicts). Errors name the field, as the command's.")
        .def_static(
            "from_vectors",
            [](py::handle vectors, py::handle layers, py::handle dims, const std::string& point, const std::string& op,
               double alpha, py::handle positions) {
                // {layer: vector} or a 2-D array whose rows go with `layers`.
                nlohmann::json rows = nlohmann::json::array(), layer_list = nlohmann::json::array();
                if (py::isinstance<py::dict>(vectors)) {
                    for (auto [layer, v] : vectors.cast<py::dict>()) {
                        layer_list.push_back(layer.cast<int>());
                        rows.push_back(py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(v)
                                           .cast<std::vector<float>>());
                    }
                } else {
                    const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(vectors);
                    if (!a || (a.ndim() != 1 && a.ndim() != 2))
                        throw_usage("from_vectors: vectors must be {layer: vector} or a [layers, n] array");
                    const int64_t n_rows = a.ndim() == 2 ? a.shape(0) : 1, n = a.ndim() == 2 ? a.shape(1) : a.shape(0);
                    for (int64_t r = 0; r < n_rows; ++r)
                        rows.push_back(std::vector<float>(a.data() + r * n, a.data() + (r + 1) * n));
                    if (layers.is_none()) throw_usage("from_vectors: give layers=[...] with an array of vectors");
                    layer_list = to_json(layers);
                }
                nlohmann::json iv = {{"op", op},       {"point", point}, {"layers", layer_list},
                                     {"values", rows}, {"alpha", alpha}, {"positions", json_of(positions)}};
                iv["dims"] = dims.is_none() ? nlohmann::json("all") : to_json(dims);
                const nlohmann::json j = {{"format", kPlanFormatLiteral},
                                          {"version", steer::kPlanVersion},
                                          {"interventions", nlohmann::json::array({iv})}};
                return plan_from_json(j, "vectors", ".");
            },
            "vectors"_a, "layers"_a = py::none(), "dims"_a = py::none(), "point"_a = "resid_post", "op"_a = "add",
            "alpha"_a = 1.0, "positions"_a = py::none(),
            R"(One intervention at point of each layer: vectors is {layer: vector} or a [len(layers), n]
array (one row for every layer if it is 1-D). dims: the dimensions the rows' values are for
(default all: rows have n_embd values). op: add, set, scale, mean. positions: "all", "prompt",
"generated", "skip_bos" or {"from": N}.)")
        .def_static(
            "from_cvector",
            [](const std::string& path, double scale, std::optional<std::pair<int64_t, int64_t>> layer_range) {
                steer::CvectorImportOptions o;
                o.scale = scale;
                if (layer_range) std::tie(o.layer_start, o.layer_end) = *layer_range;
                return steer::import_cvector(path, o);
            },
            "path"_a, "scale"_a = 1.0, "layer_range"_a = py::none(),
            "A llama.cpp control vector (direction.N tensors) as llama.cpp applies it with --control-vector-scaled "
            "path scale and --control-vector-layer-range A B (as `critdim import-cvector`).")
        .def("to_json", &steer::plan_to_json, "The plan as JSON text (values inline, bit-exact).")
        .def("to_dict", [](const steer::Plan& p) { return from_json(steer::plan_to_json(p)); })
        .def(
            "save", [](const steer::Plan& p, const std::string& path) { steer::save_plan(p, path); }, "path"_a,
            "Writes the plan file atomically.")
        .def_readwrite("alpha", &steer::Plan::alpha, "multiplies every intervention's alpha (the command's --alpha)")
        .def_readonly("source", &steer::Plan::source)
        .def_readonly("comment", &steer::Plan::comment)
        .def("__len__", [](const steer::Plan& p) { return p.interventions.size(); })
        .def("__repr__", [](const steer::Plan& p) {
            return "<critdim.Plan " + p.source + ": " + std::to_string(p.interventions.size()) +
                   " interventions, alpha " + std::to_string(p.alpha) + ">";
        });
    // A copy to change alpha without touching the original.
    cls.def(
        "with_alpha",
        [](const steer::Plan& p, double alpha) {
            steer::Plan q = p;
            q.alpha = alpha;
            return q;
        },
        "alpha"_a);
}

}  // namespace critdim::python
