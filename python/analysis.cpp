// critdim.scan / find / load_stats / vector / synth: the analysis and steering-vector commands
// as functions, with the statistics file's arrays as NumPy views (no copy) of the loaded file.
#include "critdim/analysis.hpp"

#include "bindings.hpp"

namespace critdim::python {

namespace {

// A loaded stats file; its arrays are views that keep it alive.
struct PyStats {
    std::string path;
    std::shared_ptr<const analysis::Stats> stats;
};

// Per-site arrays of SiteStats ([n_sites, n_embd]) of one element type, as properties.
template <class T>
void def_site_arrays(py::class_<PyStats>& cls,
                     std::initializer_list<std::pair<const char*, std::vector<T> analysis::SiteStats::*>> fields) {
    for (const auto& [name, member] : fields)
        cls.def_property_readonly(name, [member](const PyStats& s) {
            return readonly_view((s.stats->s.*member).data(),
                                 {static_cast<py::ssize_t>(s.stats->n_sites()), s.stats->n_embd()}, s.stats);
        });
}

template <class T>
py::array site_array(const PyStats& s, const std::vector<T>& v, int64_t n_rows) {
    return readonly_view(v.data(), {n_rows, s.stats->n_embd()}, s.stats);
}

py::dict header_dict(const analysis::StatsHeader& h) {
    py::dict d;
    d["format_version"] = h.format_version, d["name"] = h.name, d["critdim_version"] = h.critdim_version;
    d["model_path"] = h.model_path, d["model_hash"] = h.model_hash, d["model_arch"] = h.model_arch;
    d["model_type"] = h.model_type, d["n_embd"] = h.n_embd, d["n_layer"] = h.n_layer, d["corpus"] = h.corpus;
    d["corpus_hash"] = h.corpus_hash, d["corpus_docs"] = h.corpus_docs, d["shards"] = h.shards;
    d["policy"] = h.policy, d["sigma_axis"] = h.sigma_axis, d["sigma_ref_hash"] = h.sigma_ref_hash;
    d["prompt_format"] = h.prompt_format, d["sigma_k"] = h.sigma_k, d["massive_abs"] = h.massive_abs;
    d["massive_ratio"] = h.massive_ratio, d["n_ctx"] = h.n_ctx, d["n_batch"] = h.n_batch, d["n_seq"] = h.n_seq;
    d["add_bos"] = h.add_bos, d["complete"] = h.complete, d["docs_done"] = h.docs_done, d["n_docs"] = h.n_docs;
    d["n_truncated"] = h.n_truncated, d["n_tokens"] = h.n_tokens;
    return d;
}

PyStats load_stats(const std::string& path) {
    auto st = std::make_shared<analysis::Stats>(analysis::Stats::read(path));
    return {path, std::move(st)};
}

// find's inputs: "[NAME=]FILE" strings or loaded Stats (named by the file they came from).
std::pair<std::string, analysis::Stats> domain_of(py::handle obj) {
    if (py::isinstance<PyStats>(obj)) {
        const PyStats& s = obj.cast<const PyStats&>();
        return {s.path, *s.stats};
    }
    return analysis::read_domain_stats(obj.cast<std::string>());
}

void bind_stats(py::module_& m) {
    using namespace pybind11::literals;
    py::class_<PyStats> cls(m, "Stats", R"(A stats file (docs/formats.md) as NumPy arrays (read-only views).

Per site and dimension, [n_sites, n_embd] (site i is stats.sites[i], e.g. "resid_post.3"):
sum, sum_sq, sum_abs, max_abs (float64), max_value (float32), max_doc, active_docs,
active_tokens, massive_tokens, massive_first (int64), max_pos, max_token (int32).
Per site, [n_sites]: count (tokens counted by the policy), rows (tokens seen).
active_any [n_points, n_embd]; kept_rows [n_kept, n_sites, n_embd] with --keep-rows.
Mean activation: stats.sum / stats.count[:, None].)");
    using S = analysis::SiteStats;
    def_site_arrays<double>(
        cls, {{"sum", &S::sum}, {"sum_sq", &S::sum_sq}, {"sum_abs", &S::sum_abs}, {"max_abs", &S::max_abs}});
    def_site_arrays<float>(cls, {{"max_value", &S::max_value}});
    def_site_arrays<int64_t>(cls, {{"max_doc", &S::max_doc},
                                   {"active_docs", &S::active_docs},
                                   {"active_tokens", &S::active_tokens},
                                   {"massive_tokens", &S::massive_tokens},
                                   {"massive_first", &S::massive_first}});
    def_site_arrays<int32_t>(cls, {{"max_pos", &S::max_pos}, {"max_token", &S::max_token}});
    cls.def_readonly("path", &PyStats::path)
        .def_property_readonly("header", [](const PyStats& s) { return header_dict(s.stats->header); })
        .def_property_readonly("name", [](const PyStats& s) { return s.stats->header.name; })
        .def_property_readonly("sites", [](const PyStats& s) { return s.stats->sites; })
        .def_property_readonly("points", [](const PyStats& s) { return s.stats->points; })
        .def_property_readonly("n_embd", [](const PyStats& s) { return s.stats->n_embd(); })
        .def(
            "site_index",
            [](const PyStats& s, const std::string& site) {
                const auto& v = s.stats->sites;
                const auto it = std::find(v.begin(), v.end(), site);
                if (it == v.end()) throw_usage(s.path + ": no site '" + site + "' in this stats file");
                return it - v.begin();
            },
            "site"_a)
        .def_property_readonly("count",
                               [](const PyStats& s) {
                                   return readonly_view(s.stats->count.data(),
                                                        {static_cast<py::ssize_t>(s.stats->count.size())}, s.stats);
                               })
        .def_property_readonly("rows",
                               [](const PyStats& s) {
                                   return readonly_view(s.stats->rows.data(),
                                                        {static_cast<py::ssize_t>(s.stats->rows.size())}, s.stats);
                               })
        .def_property_readonly("active_any",
                               [](const PyStats& s) {
                                   return site_array(s, s.stats->active_any,
                                                     static_cast<int64_t>(s.stats->points.size()));
                               })
        .def_property_readonly(
            "kept_docs",
            [](const PyStats& s) { return readonly_view(s.stats->kept_docs.data(), {s.stats->n_kept()}, s.stats); })
        .def_property_readonly(
            "kept_rows",
            [](const PyStats& s) {
                return readonly_view(
                    s.stats->kept_rows.data(),
                    {s.stats->n_kept(), static_cast<py::ssize_t>(s.stats->n_sites()), s.stats->n_embd()}, s.stats);
            })
        .def("__repr__", [](const PyStats& s) {
            return "<critdim.Stats " + s.path + ": domain '" + s.stats->header.name + "', " +
                   std::to_string(s.stats->header.n_docs) + " documents, " + std::to_string(s.stats->n_sites()) +
                   " sites x " + std::to_string(s.stats->n_embd()) + " dims>";
        });
    m.def("load_stats", &load_stats, "path"_a, py::call_guard<py::gil_scoped_release>(),
          "Reads a stats file (critdim scan's output) as critdim.Stats.");
}

const char* kScanDoc = R"(critdim scan: residual-stream statistics over a corpus, written to out
and returned as critdim.Stats. corpus: a spec "[FORMAT:]PATH" or a list of them (formats: lines,
paragraphs, file, jsonl, instructions, mmlu, csv). The options are the command's
(docs/analysis.md): points, policy (last, content, all), sigma_axis, sigma, sigma_ref, name,
ctx, batch, seqs, shard "I/N", add_bos, parse_special, chat (with system, chat_template),
keep_rows, threads. The GIL is released while it runs.)";

}  // namespace

void bind_analysis(py::module_& m) {
    using namespace pybind11::literals;
    bind_stats(m);
    m.def(
        "scan",
        [](const std::string& model, py::handle corpus, const std::string& out, py::handle points,
           const std::string& policy, const std::string& sigma_axis, double sigma, const std::string& sigma_ref,
           const std::string& name, int64_t ctx, int64_t batch, int seqs, const std::string& shard, bool add_bos,
           bool parse_special, bool chat, const std::string& system, const std::string& chat_template, bool keep_rows,
           const std::string& field, int threads) {
            const std::vector<analysis::CorpusSpec> specs = analysis::parse_corpus_specs(string_list(corpus), field);
            analysis::ScanOptions o;
            if (!points.is_none()) o.points = string_list(points);
            o.policy = analysis::parse_position_policy(policy);
            o.sigma_axis = analysis::parse_sigma_axis(sigma_axis);
            o.sigma_k = sigma;
            o.sigma_ref = sigma_ref;
            o.name = name;
            o.n_ctx = ctx;
            if (batch < 1) throw_usage("scan: batch must be positive");
            o.n_batch = batch;
            o.n_seq = seqs;
            std::tie(o.shard, o.n_shards) = analysis::parse_shard(shard);
            o.add_bos = add_bos;
            o.parse_special = parse_special;
            o.keep_rows = keep_rows;
            o.n_threads = threads;
            if (!chat && (!system.empty() || !chat_template.empty()))
                throw_usage("scan: system and chat_template need chat=True");
            py::gil_scoped_release released;
            if (chat) {  // as `critdim scan --chat`
                const auto file = gguf::File::open(model);
                const auto tok = tokenizer::Tokenizer::from_gguf(*file);
                auto render = tokenizer::user_prompt_renderer(*tok, model, system, chat_template);
                o.format = [render](const analysis::Document& d) { return render(d.text); };
                o.format_name = "chat:" + (chat_template.empty() ? std::string("model") : chat_template) +
                                (system.empty() ? "" : " system:" + system);
                o.parse_special = true;
            }
            analysis::scan(model, specs, o, out);
            return load_stats(out);
        },
        "model"_a, "corpus"_a, "out"_a, "points"_a = py::none(), "policy"_a = "last", "sigma_axis"_a = "vector",
        "sigma"_a = 3.0, "sigma_ref"_a = "", "name"_a = "", "ctx"_a = 0, "batch"_a = 512, "seqs"_a = 0,
        "shard"_a = "0/1", "add_bos"_a = true, "parse_special"_a = false, "chat"_a = false, "system"_a = "",
        "chat_template"_a = "", "keep_rows"_a = false, "field"_a = "text", "threads"_a = 0, kScanDoc);

    m.def(
        "find",
        [](py::handle domains, py::handle vs, const std::string& criterion, int k, double gap,
           const std::string& gap_sign, const std::string& rest, const std::string& point,
           const std::string& layer_pool, double min_ratio, const std::string& out) {
            analysis::FindOptions o;
            o.criterion = analysis::parse_criterion(criterion);
            if (gap_sign != "abs" && gap_sign != "positive")
                throw_usage("gap_sign: '" + gap_sign + "' is not abs or positive");
            if (rest != "pooled" && rest != "pairwise") throw_usage("rest: '" + rest + "' is not pooled or pairwise");
            if (layer_pool != "max" && layer_pool != "mean")
                throw_usage("layer_pool: '" + layer_pool + "' is not max or mean");
            o.k = k, o.gap = gap, o.point = point, o.min_ratio = min_ratio;
            o.gap_positive = gap_sign == "positive";
            o.pairwise = rest == "pairwise";
            o.layer_mean = layer_pool == "mean";
            auto list = [](py::handle h) {
                std::vector<std::pair<std::string, analysis::Stats>> v;
                if (h.is_none()) return v;
                if (py::isinstance<py::str>(h) || py::isinstance<PyStats>(h)) {
                    v.push_back(domain_of(h));
                } else {
                    for (py::handle x : h) v.push_back(domain_of(x));
                }
                return v;
            };
            const auto d = list(domains), others = list(vs);
            if (d.empty()) throw_usage("find: give at least one domain");
            std::string text;
            {
                py::gil_scoped_release released;
                const auto results = analysis::find_critical(d, others, o);
                text = analysis::critical_json(results, o, d.front().second);
                if (!out.empty()) write_file_atomic(out, text);
            }
            return from_json(text);
        },
        "domains"_a, "vs"_a = py::none(), "criterion"_a = "paper", "k"_a = 10, "gap"_a = 0.30, "gap_sign"_a = "abs",
        "rest"_a = "pooled", "point"_a = "resid_post", "layer_pool"_a = "max", "min_ratio"_a = 1.5, "out"_a = "",
        R"(critdim find: the domain-critical dimensions of each domain against all other files.
domains, vs: stats file names ("[NAME=]FILE") or critdim.Stats, one or a list. Returns
critical.json as a dict (also written to out if given):
[d["dim"] for d in result["domains"][0]["dims"]] are the first domain's dimensions, ranked.)");

    m.def(
        "vector",
        [](const std::string& pos, const std::string& neg, py::handle dims, const std::string& domain,
           const std::string& point, std::optional<std::pair<int, int>> layers, const std::string& method,
           const std::string& norm, bool center, double alpha) {
            steer::VectorOptions o;
            o.pos = pos, o.neg = neg, o.domain = domain, o.point = point, o.center = center, o.alpha = alpha;
            if (py::isinstance<py::str>(dims))
                o.dims_path = dims.cast<std::string>();
            else if (!dims.is_none())
                o.dims = dims.cast<std::vector<int64_t>>();
            if (layers) std::tie(o.layer_first, o.layer_last) = *layers;
            o.method = steer::parse_vector_method(method);
            o.norm = steer::parse_vector_norm(norm);
            py::gil_scoped_release released;
            return steer::build_vector_plan(o);
        },
        "pos"_a, "neg"_a, "dims"_a = py::none(), "domain"_a = "", "point"_a = "resid_post", "layers"_a = py::none(),
        "method"_a = "mean", "norm"_a = "match-whole", "center"_a = false, "alpha"_a = 1.0,
        R"(critdim vector: a steering Plan from two stats files (pos minus neg). dims: critical.json's
file name (Critical Dimension Steering, with domain) or a list of dimensions; None: the whole
vector. layers: (first, last) inclusive. method: mean or pca; norm: match-whole, unit, none.)");

    m.def(
        "synth",
        [](const std::string& out, const std::string& config, const std::string& arch, const std::string& type,
           uint64_t seed, const std::string& plant, int threads) {
            model::SynthOptions o;
            o.arch = arch;
            o.type = model::parse_synth_type(type);
            o.config = model::synth_config(config);
            o.seed = seed;
            o.plant = plant;
            o.n_threads = threads;
            py::gil_scoped_release released;
            return model::synthesize(o, out).fallbacks;
        },
        "out"_a, "config"_a = "tiny", "arch"_a = "", "type"_a = "f32", "seed"_a = 0, "plant"_a = "", "threads"_a = 0,
        R"(critdim synth: a random-weight model at a named configuration (tiny, small, smollm2-135m, ...)
written to out; plant="default" plants known critical dimensions (info["critdim"]). Returns the
tensors that fell back to another type.)");
}

}  // namespace critdim::python
