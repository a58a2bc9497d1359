// Steering plans: JSON parsing with a field path in every message, and writing plans back.
// Everything that does not depend on the model is checked here; apply.cpp checks the rest.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "critdim/steer.hpp"
#include "steer/values.hpp"

namespace critdim::steer {

using nlohmann::json;

const char* op_name(Op op) {
    switch (op) {
        case Op::add: return "add";
        case Op::set: return "set";
        case Op::scale: return "scale";
        case Op::clamp: return "clamp";
        case Op::zero: return "zero";
        case Op::mean: return "mean";
    }
    return "?";
}

std::string position_policy_name(const PositionPolicy& p) {
    switch (p.kind) {
        case Positions::all: return "all";
        case Positions::prompt: return "prompt";
        case Positions::generated: return "generated";
        case Positions::skip_bos: return "skip_bos";
        case Positions::from: return "from " + std::to_string(p.from);
    }
    return "?";
}

namespace {

const char* json_type_name(const json& j) {
    if (j.is_number_integer()) return "an integer";
    if (j.is_number()) return "a number";
    if (j.is_string()) return "a string";
    if (j.is_boolean()) return "a boolean";
    if (j.is_null()) return "null";
    if (j.is_array()) return "an array";
    return "an object";
}

// A JSON value with its field path, so every complaint names the file and the field.
struct Field {
    const json& j;
    std::string source;  // "plan.json"
    std::string path;    // "interventions[2].layers"

    [[noreturn]] void fail(const std::string& what) const {
        throw Error(ErrorKind::input, path.empty() ? source : source + ": " + path, what);
    }
    Field at(const std::string& key) const { return {j.at(key), source, path.empty() ? key : path + "." + key}; }
    Field at(size_t i) const { return {j.at(i), source, path + "[" + std::to_string(i) + "]"}; }
    bool has(const char* key) const { return j.contains(key); }

    void expect_object() const {
        if (!j.is_object()) fail("expected an object, found " + std::string(json_type_name(j)));
    }
    // Unknown keys are errors: a misspelt field must not silently do nothing.
    void allow_only(std::initializer_list<const char*> keys) const {
        for (const auto& [key, _] : j.items()) {
            bool known = false;
            for (const char* k : keys) known = known || key == k;
            if (known) continue;
            std::string list;
            for (const char* k : keys) list += std::string(list.empty() ? "" : ", ") + k;
            fail("unknown field '" + key + "' (expected " + list + ")");
        }
    }
    std::string as_string() const {
        if (!j.is_string()) fail("expected a string, found " + std::string(json_type_name(j)));
        return j.get<std::string>();
    }
    double as_number() const {
        if (!j.is_number()) fail("expected a number, found " + std::string(json_type_name(j)));
        const double v = j.get<double>();
        if (!std::isfinite(v)) fail("value is not finite");
        return v;
    }
    int64_t as_int() const {
        if (!j.is_number_integer()) fail("expected an integer, found " + std::string(json_type_name(j)));
        return j.get<int64_t>();
    }
};

model::HookPoint parse_point(const Field& f) {
    const std::string s = f.as_string();
    for (model::HookPoint p : {model::HookPoint::embed, model::HookPoint::resid_pre, model::HookPoint::attn_out,
                               model::HookPoint::mlp_out, model::HookPoint::resid_post, model::HookPoint::final_norm})
        if (s == model::hook_point_name(p)) return p;
    f.fail("'" + s + "' is not a hook point (expected embed, resid_pre, attn_out, mlp_out, resid_post, final_norm)");
}

Op parse_op(const Field& f) {
    const std::string s = f.as_string();
    for (Op op : {Op::add, Op::set, Op::scale, Op::clamp, Op::zero, Op::mean})
        if (s == op_name(op)) return op;
    f.fail("unknown operation '" + s + "' (expected add, set, scale, clamp, zero, mean)");
}

PositionPolicy parse_positions(const Field& f) {
    if (f.j.is_object()) {
        f.allow_only({"from"});
        if (!f.has("from")) f.fail("expected {\"from\": N}");
        const int64_t n = f.at("from").as_int();
        if (n < 0) f.at("from").fail(std::to_string(n) + " is negative");
        return {Positions::from, n};
    }
    const std::string s = f.as_string();
    if (s == "all") return {Positions::all, 0};
    if (s == "prompt") return {Positions::prompt, 0};
    if (s == "generated") return {Positions::generated, 0};
    if (s == "skip_bos") return {Positions::skip_bos, 0};
    f.fail("'" + s + "' is not a position policy (expected all, prompt, generated, skip_bos or {\"from\": N})");
}

// "all", [1, 2, 3], or {"from": A, "to": B} (inclusive).
void parse_layers(const Field& f, Intervention& iv) {
    if (f.j.is_string()) {
        if (f.as_string() != "all") f.fail("expected \"all\", a list of layers or {\"from\": A, \"to\": B}");
        iv.all_layers = true;
        return;
    }
    if (f.j.is_object()) {
        f.allow_only({"from", "to"});
        if (!f.has("from") || !f.has("to")) f.fail("a layer range needs both \"from\" and \"to\"");
        const int64_t a = f.at("from").as_int(), b = f.at("to").as_int();
        if (a < 0) f.at("from").fail(std::to_string(a) + " is negative");
        if (b < a) f.fail("\"to\" (" + std::to_string(b) + ") is below \"from\" (" + std::to_string(a) + ")");
        if (b - a > 100000) f.fail("range of " + std::to_string(b - a + 1) + " layers is implausible");
        for (int64_t l = a; l <= b; ++l) iv.layers.push_back(static_cast<int>(l));
        return;
    }
    if (!f.j.is_array()) f.fail("expected \"all\", a list of layers or {\"from\": A, \"to\": B}, found " +
                                std::string(json_type_name(f.j)));
    if (f.j.empty()) f.fail("empty list of layers");
    std::set<int64_t> seen;
    for (size_t i = 0; i < f.j.size(); ++i) {
        const int64_t l = f.at(i).as_int();
        if (l < 0 || l > std::numeric_limits<int>::max()) f.at(i).fail(std::to_string(l) + " is not a layer index");
        if (!seen.insert(l).second) f.fail("layer " + std::to_string(l) + " is listed twice");
        iv.layers.push_back(static_cast<int>(l));
    }
}

void parse_dims(const Field& f, Intervention& iv) {
    if (f.j.is_string()) {
        if (f.as_string() != "all") f.fail("expected \"all\" or a list of dimensions");
        iv.all_dims = true;
        return;
    }
    if (!f.j.is_array()) f.fail("expected \"all\" or a list of dimensions, found " + std::string(json_type_name(f.j)));
    if (f.j.empty()) f.fail("empty list of dimensions");
    iv.all_dims = false;
    std::set<int64_t> seen;
    for (size_t i = 0; i < f.j.size(); ++i) {
        const int64_t d = f.at(i).as_int();
        if (d < 0) f.at(i).fail(std::to_string(d) + " is negative");
        if (!seen.insert(d).second) f.fail("dimension " + std::to_string(d) + " is listed twice");
        iv.dims.push_back(d);
    }
}

// Inline: a list of numbers (one row for every layer) or a list of lists (one row per layer).
// From a file: {"npy": "v.npy"} or {"gguf": "cv.gguf", "tensor": "direction.{layer}"}.
Values parse_values(const Field& f, const Intervention& iv, const std::string& base_dir) {
    Values v;
    if (f.j.is_object()) {
        f.allow_only({"npy", "gguf", "tensor"});
        if (f.has("npy")) {
            if (f.has("gguf") || f.has("tensor")) f.fail("give either \"npy\" or \"gguf\" with \"tensor\"");
            v = values_from_npy(f.at("npy").as_string(), base_dir, f.source + ": " + f.path);
        } else if (f.has("gguf")) {
            if (!f.has("tensor")) f.fail("\"gguf\" needs \"tensor\" (a name, or a pattern with {layer})");
            const std::string tensor = f.at("tensor").as_string();
            if (tensor.find("{layer}") != std::string::npos && iv.all_layers)
                f.at("tensor").fail("a {layer} pattern needs an explicit list of layers");
            v = values_from_gguf(f.at("gguf").as_string(), tensor, iv.layers, base_dir, f.source + ": " + f.path);
        } else {
            f.fail("expected \"npy\" or \"gguf\"");
        }
    } else if (f.j.is_array()) {
        if (f.j.empty()) f.fail("empty list of values");
        const bool nested = f.j.at(0).is_array();
        v.n_rows = nested ? static_cast<int64_t>(f.j.size()) : 1;
        for (size_t r = 0; r < (nested ? f.j.size() : 1); ++r) {
            const Field row = nested ? f.at(r) : f;
            if (!row.j.is_array()) row.fail("expected a list of numbers, found " + std::string(json_type_name(row.j)));
            if (nested && r > 0 && static_cast<int64_t>(row.j.size()) != v.n_cols)
                row.fail("has " + std::to_string(row.j.size()) + " values, row 0 has " + std::to_string(v.n_cols));
            v.n_cols = static_cast<int64_t>(row.j.size());
            for (size_t i = 0; i < row.j.size(); ++i) {
                const Field e = row.at(i);
                if (!e.j.is_number()) e.fail("expected a number, found " + std::string(json_type_name(e.j)));
                const double x = e.j.get<double>();
                if (std::isnan(x)) e.fail("value is NaN");
                if (!std::isfinite(static_cast<float>(x))) e.fail("value " + e.j.dump() + " is not a finite float32");
                v.data.push_back(static_cast<float>(x));
            }
        }
    } else {
        f.fail("expected a list of numbers, a list of lists, {\"npy\": FILE} or {\"gguf\": FILE, \"tensor\": NAME}; "
               "found " + std::string(json_type_name(f.j)));
    }
    for (int64_t i = 0; i < static_cast<int64_t>(v.data.size()); ++i) {
        if (std::isfinite(v.data[static_cast<size_t>(i)])) continue;
        const std::string at = v.n_rows == 1 ? "[" + std::to_string(i) + "]"
                                             : "[" + std::to_string(i / v.n_cols) + "][" + std::to_string(i % v.n_cols) + "]";
        f.fail("element " + at + " is " + (std::isnan(v.data[static_cast<size_t>(i)]) ? "NaN" : "infinite"));
    }
    if (!iv.all_dims && v.n_cols != static_cast<int64_t>(iv.dims.size()))
        f.fail("has " + std::to_string(v.n_cols) + " values per row for " + std::to_string(iv.dims.size()) +
               " dimensions");
    if (v.n_rows > 1 && !iv.all_layers && v.n_rows != static_cast<int64_t>(iv.layers.size()))
        f.fail("has " + std::to_string(v.n_rows) + " rows for " + std::to_string(iv.layers.size()) +
               " layers (give one row, or one per layer)");
    return v;
}

Intervention parse_intervention(const Field& f, const std::string& base_dir) {
    f.expect_object();
    f.allow_only({"point", "layers", "dims", "op", "values", "min", "max", "alpha", "positions", "beyond_model",
                  "comment"});
    Intervention iv;
    iv.where = f.source + ": " + f.path;
    if (f.has("comment")) (void)f.at("comment").as_string();
    if (!f.has("op")) f.fail("missing field 'op'");
    iv.op = parse_op(f.at("op"));
    if (f.has("point")) iv.point = parse_point(f.at("point"));
    const bool per_layer = iv.point != model::HookPoint::embed && iv.point != model::HookPoint::final_norm;
    if (per_layer) {
        if (!f.has("layers")) f.fail("missing field 'layers' (a list, \"all\" or {\"from\": A, \"to\": B})");
        parse_layers(f.at("layers"), iv);
    } else {
        if (f.has("layers")) f.at("layers").fail(std::string("hook point '") + model::hook_point_name(iv.point) +
                                                 "' has no layers");
        iv.layers = {-1};
    }
    if (f.has("dims")) parse_dims(f.at("dims"), iv);
    if (f.has("alpha")) iv.alpha = f.at("alpha").as_number();
    if (f.has("positions")) iv.positions = parse_positions(f.at("positions"));
    if (f.has("beyond_model")) {
        const std::string s = f.at("beyond_model").as_string();
        if (s == "error") iv.beyond_model = BeyondModel::error;
        else if (s == "ignore") iv.beyond_model = BeyondModel::ignore;
        else f.at("beyond_model").fail("'" + s + "' is not error or ignore");
    }
    const bool takes_values = iv.op == Op::add || iv.op == Op::set || iv.op == Op::scale || iv.op == Op::mean;
    if (takes_values) {
        if (!f.has("values")) f.fail(std::string("missing field 'values' (operation ") + op_name(iv.op) + ")");
        iv.values = parse_values(f.at("values"), iv, base_dir);
    } else if (f.has("values")) {
        f.at("values").fail(std::string("operation ") + op_name(iv.op) + " takes no values");
    }
    if (iv.op == Op::clamp) {
        if (!f.has("min") && !f.has("max")) f.fail("operation clamp needs 'min', 'max' or both");
        if (f.has("min")) iv.min = parse_values(f.at("min"), iv, base_dir);
        if (f.has("max")) iv.max = parse_values(f.at("max"), iv, base_dir);
    } else {
        for (const char* k : {"min", "max"})
            if (f.has(k)) f.at(k).fail(std::string("only operation clamp takes '") + k + "'");
    }
    return iv;
}

}  // namespace

Plan parse_plan(const std::string& json_text, const std::string& source, const std::string& base_dir) {
    json j;
    try {
        j = json::parse(json_text);
    } catch (const json::exception& e) {
        throw Error(ErrorKind::input, source, std::string("not valid JSON: ") + e.what());
    }
    const Field root{j, source, ""};
    root.expect_object();
    root.allow_only({"format", "version", "model", "alpha", "interventions", "comment", "provenance"});
    if (!root.has("format")) root.fail("missing field 'format' (\"" + std::string(kPlanFormat) + "\")");
    if (root.at("format").as_string() != kPlanFormat)
        root.at("format").fail("'" + j["format"].get<std::string>() + "' is not \"" + kPlanFormat + "\"");
    if (!root.has("version")) root.fail("missing field 'version'");
    if (const int64_t v = root.at("version").as_int(); v != kPlanVersion)
        root.at("version").fail("version " + std::to_string(v) + " is not supported (this critdim reads version " +
                                std::to_string(kPlanVersion) + ")");
    Plan plan;
    plan.source = source;
    if (root.has("comment")) plan.comment = root.at("comment").as_string();
    plan.provenance_json = "{}";
    if (root.has("provenance")) {
        root.at("provenance").expect_object();
        plan.provenance_json = j["provenance"].dump();
    }
    if (root.has("model")) {
        const Field m = root.at("model");
        m.expect_object();
        m.allow_only({"arch", "n_embd", "n_layer"});
        if (m.has("arch")) plan.model.arch = m.at("arch").as_string();
        if (m.has("n_embd")) {
            plan.model.n_embd = m.at("n_embd").as_int();
            if (*plan.model.n_embd <= 0) m.at("n_embd").fail("must be positive");
        }
        if (m.has("n_layer")) {
            plan.model.n_layer = m.at("n_layer").as_int();
            if (*plan.model.n_layer <= 0) m.at("n_layer").fail("must be positive");
        }
    }
    if (root.has("alpha")) plan.alpha = root.at("alpha").as_number();
    if (!root.has("interventions")) root.fail("missing field 'interventions'");
    const Field list = root.at("interventions");
    if (!list.j.is_array()) list.fail("expected an array, found " + std::string(json_type_name(list.j)));
    if (list.j.empty()) list.fail("no interventions: the plan would do nothing");
    for (size_t i = 0; i < list.j.size(); ++i) plan.interventions.push_back(parse_intervention(list.at(i), base_dir));
    return plan;
}

Plan load_plan(const std::string& path) {
    const std::string text = read_text_file(path);
    std::string base = std::filesystem::path(path).parent_path().string();
    if (base.empty()) base = ".";
    return parse_plan(text, path, base);
}

namespace {

using ojson = nlohmann::ordered_json;

// float32 values as JSON numbers that read back to the same bits: the shortest "%.9g".
ojson float_array(const float* data, int64_t n) {
    ojson a = ojson::array();
    char buf[32];
    for (int64_t i = 0; i < n; ++i) {
        const float x = data[i];
        ojson number = static_cast<double>(x);  // exact, but up to 17 digits
        // The reader goes decimal -> double -> float, so test that chain, not strtof.
        for (int digits = 6; digits <= 9 && x != 0.0f; ++digits) {
            std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(x));
            const double d = std::strtod(buf, nullptr);
            if (static_cast<float>(d) == x) {
                number = d;
                break;
            }
        }
        a.push_back(std::move(number));
    }
    return a;
}

ojson values_json(const Values& v) {
    if (v.n_rows == 1) return float_array(v.data.data(), v.n_cols);
    ojson rows = ojson::array();
    for (int64_t r = 0; r < v.n_rows; ++r) rows.push_back(float_array(v.data.data() + r * v.n_cols, v.n_cols));
    return rows;
}

ojson positions_json(const PositionPolicy& p) {
    if (p.kind == Positions::from) return {{"from", p.from}};
    return position_policy_name(p);
}

// Indented like dump(2), except that an array holding no array or object stays on one line,
// so a layer's vector is one line and not n_embd.
void print(const ojson& j, int indent, std::string& out) {
    const std::string pad(static_cast<size_t>(indent) * 2, ' '), inner(static_cast<size_t>(indent + 1) * 2, ' ');
    const bool flat_array = j.is_array() && std::none_of(j.begin(), j.end(), [](const ojson& e) { return e.is_structured(); });
    if (flat_array) {
        out += "[";
        for (size_t i = 0; i < j.size(); ++i) out += (i ? ", " : "") + j[i].dump();
        out += "]";
        return;
    }
    if (!j.is_structured() || j.empty()) {
        out += j.dump();
        return;
    }
    out += j.is_array() ? "[\n" : "{\n";
    size_t i = 0;
    for (auto it = j.begin(); it != j.end(); ++it, ++i) {
        out += inner;
        if (j.is_object()) out += ojson(it.key()).dump() + ": ";
        print(*it, indent + 1, out);
        out += i + 1 < j.size() ? ",\n" : "\n";
    }
    out += pad + (j.is_array() ? "]" : "}");
}

}  // namespace

std::string plan_to_json(const Plan& plan) {
    ojson j = ojson::object();
    j["format"] = kPlanFormat;
    j["version"] = kPlanVersion;
    if (!plan.comment.empty()) j["comment"] = plan.comment;
    ojson m = ojson::object();
    if (plan.model.arch) m["arch"] = *plan.model.arch;
    if (plan.model.n_embd) m["n_embd"] = *plan.model.n_embd;
    if (plan.model.n_layer) m["n_layer"] = *plan.model.n_layer;
    if (!m.empty()) j["model"] = m;
    j["alpha"] = plan.alpha;
    ojson list = ojson::array();
    for (const Intervention& iv : plan.interventions) {
        ojson o = ojson::object();
        o["op"] = op_name(iv.op);
        o["point"] = model::hook_point_name(iv.point);
        if (iv.point != model::HookPoint::embed && iv.point != model::HookPoint::final_norm) {
            if (iv.all_layers) o["layers"] = "all";
            else o["layers"] = iv.layers;
        }
        if (iv.all_dims) o["dims"] = "all";
        else o["dims"] = iv.dims;
        o["alpha"] = iv.alpha;
        o["positions"] = positions_json(iv.positions);
        if (iv.beyond_model == BeyondModel::ignore) o["beyond_model"] = "ignore";
        if (!iv.values.empty()) o["values"] = values_json(iv.values);
        if (!iv.min.empty()) o["min"] = values_json(iv.min);
        if (!iv.max.empty()) o["max"] = values_json(iv.max);
        list.push_back(std::move(o));
    }
    j["interventions"] = std::move(list);
    const ojson prov = ojson::parse(plan.provenance_json.empty() ? "{}" : plan.provenance_json);
    if (!prov.empty()) j["provenance"] = prov;
    std::string out;
    print(j, 0, out);
    return out + "\n";
}

void save_plan(const Plan& plan, const std::string& path) { write_file_atomic(path, plan_to_json(plan)); }

}  // namespace critdim::steer
