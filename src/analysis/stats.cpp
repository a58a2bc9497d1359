// Scan statistics: the GGUF container (docs/formats.md) and the exact merge of two files.
#include <cstring>

#include "critdim/analysis.hpp"
#include "critdim/gguf.hpp"

namespace critdim::analysis {

namespace {

constexpr const char* kArch = "critdim.stats";
constexpr auto kF64 = static_cast<TensorType>(28);
constexpr auto kI64 = static_cast<TensorType>(27);
constexpr auto kI32 = static_cast<TensorType>(26);

std::string key(const char* name) { return std::string("critdim.stats.") + name; }

template <class T>
void add(gguf::Writer& w, const std::string& name, TensorType type, const std::vector<T>& v, int64_t n_embd) {
    const int64_t rows = static_cast<int64_t>(v.size()) / n_embd;
    w.add_tensor(name, type, {n_embd, rows}, v.data(), v.size() * sizeof(T));
}

template <class T>
void load(const gguf::File& f, const std::string& name, TensorType type, std::vector<T>& v) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (!t) throw_input(f.path(), "tensor '" + name + "' is missing");
    if (t->type() != type) throw_input(f.path(), "tensor '" + name + "' has type id " + std::to_string(t->type_id));
    if (static_cast<size_t>(t->n_elements()) != v.size())
        throw_input(f.path(), "tensor '" + name + "' has " + std::to_string(t->n_elements()) + " elements, expected " +
                                  std::to_string(v.size()));
    std::memcpy(v.data(), t->data, v.size() * sizeof(T));
}

std::vector<std::string> point_names(const std::vector<std::string>& sites) {
    std::vector<std::string> points;
    for (const std::string& s : sites) {
        const std::string p = s.substr(0, s.find('.'));
        if (std::find(points.begin(), points.end(), p) == points.end()) points.push_back(p);
    }
    return points;
}

// The [n_sites or n_points, n_embd] arrays of a stats file, in file order, with their tensor names.
template <class S, class F>  // S: Stats or const Stats
void for_each_array(S& st, F&& fn) {
    fn("sum", kF64, st.s.sum);
    fn("sum_sq", kF64, st.s.sum_sq);
    fn("sum_abs", kF64, st.s.sum_abs);
    fn("max_abs", kF64, st.s.max_abs);
    fn("max_value", TensorType::F32, st.s.max_value);
    fn("max_doc", kI64, st.s.max_doc);
    fn("max_pos", kI32, st.s.max_pos);
    fn("max_token", kI32, st.s.max_token);
    fn("active_docs", kI64, st.s.active_docs);
    fn("active_tokens", kI64, st.s.active_tokens);
    fn("massive_tokens", kI64, st.s.massive_tokens);
    fn("massive_first", kI64, st.s.massive_first);
    fn("active_any", kI64, st.active_any);
}

}  // namespace

void SiteStats::resize(size_t n) {
    sum.assign(n, 0.0), sum_sq.assign(n, 0.0), sum_abs.assign(n, 0.0), max_abs.assign(n, -1.0);
    max_value.assign(n, 0.0f);
    max_doc.assign(n, -1);
    max_pos.assign(n, -1), max_token.assign(n, -1);
    active_docs.assign(n, 0), active_tokens.assign(n, 0), massive_tokens.assign(n, 0), massive_first.assign(n, 0);
}

void Stats::init(const std::vector<std::string>& site_names, int64_t n_embd) {
    sites = site_names;
    points = point_names(sites);
    header.n_embd = n_embd;
    count.assign(sites.size(), 0);
    rows.assign(sites.size(), 0);
    s.resize(sites.size() * static_cast<size_t>(n_embd));
    active_any.assign(points.size() * static_cast<size_t>(n_embd), 0);
}

void Stats::write(const std::string& path) const {
    const StatsHeader& h = header;
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::str(kArch));
    w.set("general.name", gguf::Value::str(h.name));
    w.set(key("format_version"), gguf::Value::u32(static_cast<uint32_t>(h.format_version)));
    w.set(key("critdim_version"), gguf::Value::str(h.critdim_version));
    w.set(key("name"), gguf::Value::str(h.name));
    w.set(key("model.path"), gguf::Value::str(h.model_path));
    w.set(key("model.hash"), gguf::Value::str(h.model_hash));
    w.set(key("model.arch"), gguf::Value::str(h.model_arch));
    w.set(key("model.type"), gguf::Value::str(h.model_type));
    w.set(key("model.n_embd"), gguf::Value::u64(static_cast<uint64_t>(h.n_embd)));
    w.set(key("model.n_layer"), gguf::Value::u64(static_cast<uint64_t>(h.n_layer)));
    w.set(key("corpus"), gguf::Value::string_array(h.corpus));
    w.set(key("corpus.hash"), gguf::Value::str(h.corpus_hash));
    w.set(key("corpus.docs"), gguf::Value::u64(static_cast<uint64_t>(h.corpus_docs)));
    w.set(key("shards"), gguf::Value::string_array(h.shards));
    w.set(key("policy"), gguf::Value::str(h.policy));
    w.set(key("prompt_format"), gguf::Value::str(h.prompt_format));
    w.set(key("sigma.axis"), gguf::Value::str(h.sigma_axis));
    w.set(key("sigma.k"), {gguf::ValueType::FLOAT64, gguf::ValueType::UINT32, h.sigma_k});
    w.set(key("sigma.ref_hash"), gguf::Value::str(h.sigma_ref_hash));
    w.set(key("massive.abs"), {gguf::ValueType::FLOAT64, gguf::ValueType::UINT32, h.massive_abs});
    w.set(key("massive.ratio"), {gguf::ValueType::FLOAT64, gguf::ValueType::UINT32, h.massive_ratio});
    w.set(key("n_ctx"), gguf::Value::u64(static_cast<uint64_t>(h.n_ctx)));
    w.set(key("n_batch"), gguf::Value::u64(static_cast<uint64_t>(h.n_batch)));
    w.set(key("n_seq"), gguf::Value::u64(static_cast<uint64_t>(h.n_seq)));
    w.set(key("add_bos"), gguf::Value::boolean(h.add_bos));
    w.set(key("complete"), gguf::Value::boolean(h.complete));
    w.set(key("docs_done"), gguf::Value::u64(static_cast<uint64_t>(h.docs_done)));
    w.set(key("n_docs"), gguf::Value::u64(static_cast<uint64_t>(h.n_docs)));
    w.set(key("n_truncated"), gguf::Value::u64(static_cast<uint64_t>(h.n_truncated)));
    w.set(key("n_tokens"), gguf::Value::u64(static_cast<uint64_t>(h.n_tokens)));
    w.set(key("sites"), gguf::Value::string_array(sites));
    w.set(key("points"), gguf::Value::string_array(points));

    const int64_t E = h.n_embd;
    const auto n_sites = static_cast<int64_t>(sites.size());
    w.add_tensor("count", kI64, {n_sites}, count.data(), count.size() * 8);
    w.add_tensor("rows", kI64, {n_sites}, rows.data(), rows.size() * 8);
    for_each_array(*this, [&](const char* name, TensorType type, const auto& v) { add(w, name, type, v, E); });
    if (!kept_docs.empty()) {
        w.add_tensor("kept_docs", kI64, {n_kept()}, kept_docs.data(), kept_docs.size() * 8);
        w.add_tensor("kept_rows", TensorType::F32, {E, n_sites, n_kept()}, kept_rows.data(), kept_rows.size() * 4);
    }
    w.write(path);
}

Stats Stats::read(const std::string& path) {
    const auto f = gguf::File::open(path);
    if (f->get_string("general.architecture", "") != kArch)
        throw_input(path, "not a critdim stats file (general.architecture is not '" + std::string(kArch) + "')");
    Stats st;
    StatsHeader& h = st.header;
    h.format_version = static_cast<int>(f->get_uint(key("format_version")));
    if (h.format_version != 1)
        throw_input(path,
                    key("format_version") + ": version " + std::to_string(h.format_version) + " is not supported");
    h.critdim_version = f->get_string(key("critdim_version"));
    h.name = f->get_string(key("name"));
    h.model_path = f->get_string(key("model.path"));
    h.model_hash = f->get_string(key("model.hash"));
    h.model_arch = f->get_string(key("model.arch"));
    h.model_type = f->get_string(key("model.type"));
    h.n_layer = static_cast<int64_t>(f->get_uint(key("model.n_layer")));
    h.corpus = f->get_string_array(key("corpus"));
    h.corpus_hash = f->get_string(key("corpus.hash"));
    h.corpus_docs = static_cast<int64_t>(f->get_uint(key("corpus.docs")));
    h.shards = f->get_string_array(key("shards"));
    h.policy = f->get_string(key("policy"));
    h.prompt_format = f->get_string(key("prompt_format"), "");
    h.sigma_axis = f->get_string(key("sigma.axis"));
    h.sigma_k = f->get_float(key("sigma.k"));
    h.sigma_ref_hash = f->get_string(key("sigma.ref_hash"));
    h.massive_abs = f->get_float(key("massive.abs"));
    h.massive_ratio = f->get_float(key("massive.ratio"));
    h.n_ctx = static_cast<int64_t>(f->get_uint(key("n_ctx")));
    h.n_batch = static_cast<int64_t>(f->get_uint(key("n_batch")));
    h.n_seq = static_cast<int64_t>(f->get_uint(key("n_seq")));
    h.add_bos = f->get_bool(key("add_bos"));
    h.complete = f->get_bool(key("complete"));
    h.docs_done = static_cast<int64_t>(f->get_uint(key("docs_done")));
    h.n_docs = static_cast<int64_t>(f->get_uint(key("n_docs")));
    h.n_truncated = static_cast<int64_t>(f->get_uint(key("n_truncated")));
    h.n_tokens = static_cast<int64_t>(f->get_uint(key("n_tokens")));
    const auto n_embd = static_cast<int64_t>(f->get_uint(key("model.n_embd")));
    if (n_embd <= 0) throw_input(path, key("model.n_embd") + ": must be positive");
    const std::vector<std::string> sites = f->get_string_array(key("sites"));
    if (sites.empty()) throw_input(path, key("sites") + ": no hook sites");
    // Every array is n_sites x n_embd: checked against the tensor table (which the reader checked
    // against the file's size) before anything that size is allocated.
    const gguf::TensorInfo* sum = f->find_tensor("sum");
    if (!sum) throw_input(path, "tensor 'sum' is missing");
    if (n_embd > (int64_t{1} << 20) || sum->n_elements() != static_cast<int64_t>(sites.size()) * n_embd)
        throw_input(path, "tensor 'sum' has " + std::to_string(sum->n_elements()) + " elements, expected " +
                              std::to_string(sites.size()) + " sites x n_embd " + std::to_string(n_embd));
    st.init(sites, n_embd);

    load(*f, "count", kI64, st.count);
    load(*f, "rows", kI64, st.rows);
    for_each_array(st, [&](const char* name, TensorType type, auto& v) { load(*f, name, type, v); });
    if (const gguf::TensorInfo* t = f->find_tensor("kept_docs")) {
        // The element count comes from the tensor table, which the reader has checked against the file size.
        st.kept_docs.resize(static_cast<size_t>(t->n_elements()));
        load(*f, "kept_docs", kI64, st.kept_docs);
        const gguf::TensorInfo* rows = f->find_tensor("kept_rows");
        const int64_t want = static_cast<int64_t>(st.kept_docs.size() * st.sites.size()) * n_embd;
        if (!rows || rows->n_elements() != want)
            throw_input(path, "tensor 'kept_rows' has " + std::to_string(rows ? rows->n_elements() : 0) +
                                  " elements, expected kept_docs x sites x n_embd = " + std::to_string(want));
        st.kept_rows.resize(static_cast<size_t>(want));
        load(*f, "kept_rows", TensorType::F32, st.kept_rows);
    }
    return st;
}

void merge_into(Stats& a, const Stats& b, const std::string& b_name) {
    StatsHeader& ha = a.header;
    const StatsHeader& hb = b.header;
    auto same = [&](const char* field, const auto& x, const auto& y) {
        if (x != y) throw Error(ErrorKind::mismatch, b_name, std::string(field) + " differs from the first file's");
    };
    same("model.hash", ha.model_hash, hb.model_hash);
    same("sites", a.sites, b.sites);
    same("model.n_embd", ha.n_embd, hb.n_embd);
    same("policy", ha.policy, hb.policy);
    same("prompt_format", ha.prompt_format, hb.prompt_format);
    same("sigma.axis", ha.sigma_axis, hb.sigma_axis);
    same("sigma.k", ha.sigma_k, hb.sigma_k);
    same("sigma.ref_hash", ha.sigma_ref_hash, hb.sigma_ref_hash);
    same("massive.abs", ha.massive_abs, hb.massive_abs);
    same("massive.ratio", ha.massive_ratio, hb.massive_ratio);
    same("n_ctx", ha.n_ctx, hb.n_ctx);
    same("add_bos", ha.add_bos, hb.add_bos);
    if (!hb.complete) throw_input(b_name, "is a checkpoint of an unfinished scan, not a stats file");
    if (a.kept_docs.empty() != b.kept_docs.empty() && ha.n_docs > 0 && hb.n_docs > 0)
        throw Error(ErrorKind::mismatch, b_name,
                    "kept_rows: one file holds its documents' rows (--keep-rows), the other not");

    // Shards of one corpus keep the corpus; different corpora are listed one after the other,
    // and b's document indices move past a's documents.
    int64_t doc_offset = 0;
    if (ha.corpus_hash != hb.corpus_hash) {
        doc_offset = ha.corpus_docs;
        ha.corpus.insert(ha.corpus.end(), hb.corpus.begin(), hb.corpus.end());
        ha.corpus_hash += "+" + hb.corpus_hash;
        ha.corpus_docs += hb.corpus_docs;
    }
    ha.shards.insert(ha.shards.end(), hb.shards.begin(), hb.shards.end());
    ha.n_docs += hb.n_docs;
    ha.docs_done += hb.docs_done;
    ha.n_truncated += hb.n_truncated;
    ha.n_tokens += hb.n_tokens;

    for (size_t i = 0; i < a.count.size(); ++i) a.count[i] += b.count[i], a.rows[i] += b.rows[i];
    SiteStats& x = a.s;
    const SiteStats& y = b.s;
    for (size_t i = 0; i < x.sum.size(); ++i) {
        x.sum[i] += y.sum[i];
        x.sum_sq[i] += y.sum_sq[i];
        x.sum_abs[i] += y.sum_abs[i];
        x.active_docs[i] += y.active_docs[i];
        x.active_tokens[i] += y.active_tokens[i];
        x.massive_tokens[i] += y.massive_tokens[i];
        x.massive_first[i] += y.massive_first[i];
        // The larger |x| wins; on a tie the earlier document (then position), as one pass keeps.
        const int64_t y_doc = y.max_doc[i] < 0 ? -1 : y.max_doc[i] + doc_offset;
        const bool take =
            y.max_abs[i] > x.max_abs[i] ||
            (y.max_abs[i] == x.max_abs[i] && y_doc >= 0 &&
             (x.max_doc[i] < 0 || y_doc < x.max_doc[i] || (y_doc == x.max_doc[i] && y.max_pos[i] < x.max_pos[i])));
        if (take) {
            x.max_abs[i] = y.max_abs[i];
            x.max_value[i] = y.max_value[i];
            x.max_doc[i] = y_doc;
            x.max_pos[i] = y.max_pos[i];
            x.max_token[i] = y.max_token[i];
        }
    }
    for (size_t i = 0; i < a.active_any.size(); ++i) a.active_any[i] += b.active_any[i];
    for (const int64_t d : b.kept_docs) a.kept_docs.push_back(d + doc_offset);
    a.kept_rows.insert(a.kept_rows.end(), b.kept_rows.begin(), b.kept_rows.end());
}

}  // namespace critdim::analysis
