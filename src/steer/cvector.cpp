// llama.cpp control vectors <-> plans. The convention (../shared/golden/README.md,
// "Control-vector convention"): direction.k (k >= 1) is added, times the scale, to the output
// of block k (resid_post.k); a file with direction.0 is refused whole; directions k >= n_layer
// are ignored; several direction.k of one block are summed in file order.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "critdim/gguf.hpp"
#include "critdim/steer.hpp"
#include "steer/compile.hpp"

namespace critdim::steer {

namespace {

// "direction.12" -> 12; nullopt for any other name (digits only after the dot).
std::optional<int64_t> direction_index(const std::string& name) {
    const std::string prefix = "direction.";
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return std::nullopt;
    int64_t k = -1;
    const char* begin = name.data() + prefix.size();
    const char* end = name.data() + name.size();
    auto [ptr, ec] = std::from_chars(begin, end, k);
    if (ec != std::errc() || ptr != end || k < 0) return std::nullopt;
    return k;
}

}  // namespace

namespace {

// The file's directions checked as llama.cpp does before using any: it refuses the whole file
// on a bad tensor. Returns (k, tensor) in file order.
std::vector<std::pair<int64_t, const gguf::TensorInfo*>> read_directions(const gguf::File& file, int64_t& n_embd) {
    const std::string& path = file.path();
    if (file.tensors().empty()) throw Error(ErrorKind::input, path, "no direction tensors (not a control vector)");
    std::vector<std::pair<int64_t, const gguf::TensorInfo*>> out;
    for (const gguf::TensorInfo& t : file.tensors()) {
        const std::string where = path + ": tensor '" + t.name + "'";
        const std::optional<int64_t> k = direction_index(t.name);
        if (!k) throw Error(ErrorKind::input, where, "not a control-vector direction (expected direction.N)");
        if (*k == 0)
            throw Error(ErrorKind::input, where,
                        "block 0 cannot be steered: llama.cpp refuses a control vector with direction.0 "
                        "(\"invalid (zero) direction tensor layer index\")");
        if (t.type() != TensorType::F32 || t.shape.size() != 1)
            throw Error(ErrorKind::input, where,
                        std::string(tensor_type_name(t.type())) + " " + t.shape_string() + " (expected a 1-D F32 tensor)");
        if (n_embd >= 0 && t.shape[0] != n_embd)
            throw Error(ErrorKind::input, where,
                        std::to_string(t.shape[0]) + " values, the first direction has " + std::to_string(n_embd));
        n_embd = t.shape[0];
        const auto* v = reinterpret_cast<const float*>(t.data);
        for (int64_t j = 0; j < n_embd; ++j)
            if (!std::isfinite(v[j])) throw Error(ErrorKind::input, where, "element " + std::to_string(j) + " is not finite");
        out.emplace_back(*k, &t);
    }
    return out;
}

}  // namespace

Plan import_cvectors(std::span<const CvectorFile> files, int64_t layer_start, int64_t layer_end) {
    if (files.empty()) throw_usage("import-cvector: no control-vector file given");
    if (layer_end > 0 && layer_start > layer_end)
        throw_usage("--layer-range " + std::to_string(layer_start) + " " + std::to_string(layer_end) +
                    ": the first block is after the last, nothing would be steered");
    const int64_t first = std::max<int64_t>(layer_start, 1);  // llama.cpp: A <= 0 counts as 1
    const int64_t last = layer_end > 0 ? layer_end : std::numeric_limits<int64_t>::max();

    Plan plan;
    plan.source = files[0].path;
    int64_t n_embd = -1;
    std::string all_k, hint;
    nlohmann::json sources = nlohmann::json::array();
    for (const CvectorFile& cf : files) {
        auto file = gguf::File::open(cf.path);
        for (const auto& [k, t] : read_directions(*file, n_embd)) {
            all_k += (all_k.empty() ? "" : ", ") + std::to_string(k);
            if (k < first || k > last) continue;
            Intervention iv;
            iv.where = plan.source + ": interventions[" + std::to_string(plan.interventions.size()) + "]";
            iv.point = model::HookPoint::resid_post;
            iv.layers = {static_cast<int>(k)};
            iv.all_dims = true;
            iv.op = Op::add;
            iv.alpha = cf.scale;
            iv.values.n_rows = 1;
            iv.values.n_cols = n_embd;
            const auto* src = reinterpret_cast<const float*>(t->data);
            iv.values.data.assign(src, src + n_embd);
            iv.beyond_model = BeyondModel::ignore;  // llama.cpp ignores direction.k for k >= n_layer
            plan.interventions.push_back(std::move(iv));
        }
        if (const gguf::Value* h = file->find("controlvector.model_hint");
            h && h->type == gguf::ValueType::STRING && hint.empty())
            hint = std::get<std::string>(h->data);
        sources.push_back({{"file", std::filesystem::path(cf.path).filename().string()}, {"scale", cf.scale}});
    }
    if (plan.interventions.empty())
        throw Error(ErrorKind::input, plan.source,
                    "the layer range " + std::to_string(first) + ".." +
                        (layer_end > 0 ? std::to_string(last) : std::string("last")) +
                        " keeps none of the directions (" + all_k + ")");
    plan.model.n_embd = n_embd;
    nlohmann::json prov = {{"imported_from", sources}, {"layer_range", {layer_start, layer_end}}};
    if (!hint.empty()) prov["model_hint"] = hint;
    plan.provenance_json = prov.dump();
    plan.comment = "llama.cpp control vector: direction.k added to resid_post.k (block k output) at every position";
    return plan;
}

Plan import_cvector(const std::string& path, const CvectorImportOptions& options) {
    const CvectorFile file{path, options.scale};
    return import_cvectors(std::span<const CvectorFile>(&file, 1), options.layer_start, options.layer_end);
}

// ---------------------------------------------------------------------------------------------

namespace {

[[noreturn]] void refuse(const std::string& where, const std::string& what) {
    throw Error(ErrorKind::input, where, what + "; it cannot be exported as a llama.cpp control vector");
}

void check_exportable(const Intervention& iv) {
    if (iv.op != Op::add)
        refuse(iv.where + ".op", std::string("operation '") + op_name(iv.op) +
                                     "' is not an addition (a control vector can only add a vector)");
    if (iv.point != model::HookPoint::resid_post)
        refuse(iv.where + ".point", std::string("hook point '") + model::hook_point_name(iv.point) +
                                        "' is not resid_post (llama.cpp adds control vectors to block outputs)");
    if (iv.positions.kind != Positions::all)
        refuse(iv.where + ".positions", "position policy '" + position_policy_name(iv.positions) +
                                            "' is not 'all' (llama.cpp adds a control vector at every position)");
    if (iv.all_layers)
        refuse(iv.where + ".layers", "\"all\" includes block 0, which llama.cpp cannot steer (it has no direction.0; "
                                     "use {\"from\": 1, \"to\": N})");
    if (std::find(iv.layers.begin(), iv.layers.end(), 0) != iv.layers.end())
        refuse(iv.where + ".layers", "block 0 cannot be steered by llama.cpp (it has no direction.0)");
}

}  // namespace

CvectorExport plan_to_cvector(const Plan& plan, const model::Model* model) {
    for (const Intervention& iv : plan.interventions) check_exportable(iv);
    CvectorExport out;
    model::HParams hp;
    if (model) {
        hp = model->hparams();
    } else {
        // Without a model the plan must say n_embd (or imply it with a dense vector).
        hp.arch = plan.model.arch.value_or("");
        hp.n_embd = plan.model.n_embd.value_or(0);
        for (const Intervention& iv : plan.interventions)
            if (hp.n_embd == 0 && iv.all_dims) hp.n_embd = iv.values.n_cols;
        if (hp.n_embd == 0)
            throw Error(ErrorKind::usage, plan.source,
                        "n_embd is unknown (the plan lists dimensions only): set model.n_embd in the plan or give --model");
        int max_layer = 0;
        for (const Intervention& iv : plan.interventions)
            for (int l : iv.layers) max_layer = std::max(max_layer, l);
        hp.n_layer = plan.model.n_layer.value_or(max_layer + 1);
    }
    const std::vector<SiteSteps> sites = compile_plans(hp, std::span<const Plan>(&plan, 1), std::nullopt, nullptr);
    for (const SiteSteps& s : sites) {
        // Only unrestricted adds reach here, and consecutive adds at a site are merged into one.
        if (s.steps.size() != 1 || s.steps[0].op != Op::add)
            throw Error(ErrorKind::internal, plan.source, "export: site " + s.site.name() + " did not compile to one add");
        Step dense;
        dense.v.assign(static_cast<size_t>(hp.n_embd), 0.0f);
        merge_add(dense, s.steps[0], hp.n_embd);
        out.directions.emplace_back(s.site.layer, std::move(dense.v));
    }
    std::sort(out.directions.begin(), out.directions.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    if (out.directions.empty())
        throw Error(ErrorKind::input, plan.source, "no direction is left to export (every layer is beyond the model)");
    out.n_embd = hp.n_embd;
    out.layer_count = hp.n_layer - 1;
    if (model || plan.model.arch) {
        out.model_hint = hp.arch;
    } else {
        const nlohmann::json prov = nlohmann::json::parse(plan.provenance_json.empty() ? "{}" : plan.provenance_json);
        if (prov.contains("model_hint") && prov["model_hint"].is_string()) out.model_hint = prov["model_hint"];
    }
    return out;
}

void write_cvector(const CvectorExport& cv, const std::string& path) {
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::str("controlvector"));
    w.set("controlvector.model_hint", gguf::Value::str(cv.model_hint));
    w.set("controlvector.layer_count", gguf::Value::i32(static_cast<int32_t>(cv.layer_count)));
    for (const auto& [k, v] : cv.directions)
        w.add_tensor("direction." + std::to_string(k), TensorType::F32, {cv.n_embd}, v.data(), v.size() * sizeof(float));
    w.write(path);
}

}  // namespace critdim::steer
