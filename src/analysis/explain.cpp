// explain: what the critical dimensions detect. Runs a corpus through the model, keeps for
// each dimension its top activating tokens (with context), its mean |x| per token class, and a
// layer x dimension heatmap; renders a self-contained HTML report (inline SVG) and its JSON twin.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::analysis {

namespace {

using nlohmann::json;

const char* const kClasses[] = {"bos/special", "digits", "operators/symbols", "punctuation", "words", "other"};

int token_class(const tokenizer::Tokenizer& tok, int32_t id) {
    if (id == tok.bos_id() || tok.is_control(id)) return 0;
    const std::string p = tok.token_to_piece(id, false);
    bool digit = false, op = false, punct = false, alpha = false;
    for (unsigned char c : p) {
        if (std::isdigit(c))
            digit = true;
        else if (std::strchr("+-*/=<>^%&|~$#@\\", c))
            op = true;
        else if (std::ispunct(c))
            punct = true;
        else if (std::isalpha(c) || c >= 0x80)
            alpha = true;
    }
    if (digit && !alpha) return 1;
    if (op && !alpha) return 2;
    if (punct && !alpha) return 3;
    if (alpha) return 4;
    return 5;
}

struct Hit {
    float value = 0;
    int layer = -1;
    int64_t doc = -1;
    int32_t pos = -1, token = -1;
};

std::string escape_html(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '<':
                o += "&lt;";
                break;
            case '>':
                o += "&gt;";
                break;
            case '&':
                o += "&amp;";
                break;
            case '"':
                o += "&quot;";
                break;
            case '\n':
                o += "\\n";
                break;
            default:
                o += c;
        }
    }
    return o;
}

}  // namespace

std::string explain_json(const std::string& model_path, const std::string& critical_path,
                         const std::vector<CorpusSpec>& corpus, int top, int64_t n_ctx, int n_threads) {
    const CriticalFile crit = read_critical(critical_path);
    if (crit.version != 1) throw_input(critical_path, "version: expected 1");
    const std::vector<int64_t> dims = distinct_dims(crit.domains);
    if (dims.empty()) throw_input(critical_path, "domains[].dims: no dimensions to explain");
    const std::string point = crit.point.empty() ? "resid_post" : crit.point;

    const auto m = model::Model::load(model_path);
    const auto tok = tokenizer::Tokenizer::from_gguf(m->file());
    const int64_t E = m->hparams().n_embd;
    const int L = static_cast<int>(m->hparams().n_layer);
    for (int64_t d : dims)
        if (d < 0 || d >= E)
            throw Error(ErrorKind::mismatch, critical_path, "dim " + std::to_string(d) + " is out of range");
    if (crit.model_hash != hash_file(model_path))
        std::fprintf(stderr, "critdim: warning: %s was found on another model file\n", critical_path.c_str());

    std::vector<Document> docs;
    for (const CorpusSpec& s : corpus) {
        auto part = read_corpus(s);
        docs.insert(docs.end(), part.begin(), part.end());
    }
    const size_t K = dims.size();
    std::vector<std::vector<Hit>> best(K);                      // top hits per dim (one per token)
    std::vector<double> heat(static_cast<size_t>(L) * K, 0.0);  // sum |x| per (layer, dim)
    std::vector<double> class_sum(K * 6, 0.0);
    std::vector<int64_t> class_count(6, 0);
    int64_t n_tokens = 0;
    const int64_t ctx_len = n_ctx > 0 ? n_ctx : m->hparams().n_ctx_train;
    model::Context ctx(*m, {.n_ctx = ctx_len, .n_batch = ctx_len, .n_seq = 1, .n_threads = n_threads});
    std::vector<float> peak;  // [tokens * K] max |x| over layers, signed value kept
    std::vector<int> peak_layer;
    int64_t cur_doc = 0;
    ctx.hooks().observe_all_layers(model::HookSite::parse(point + ".0").point, [&](const model::ConstRows& rows) {
        for (int64_t r = 0; r < rows.n_rows; ++r)
            for (size_t k = 0; k < K; ++k) {
                const float v = rows.row(r)[dims[k]];
                heat[static_cast<size_t>(rows.site.layer) * K + k] += std::fabs(v);
                float& p = peak[static_cast<size_t>(r) * K + k];
                if (std::fabs(v) > std::fabs(p)) p = v, peak_layer[static_cast<size_t>(r) * K + k] = rows.site.layer;
            }
    });
    std::vector<std::vector<int32_t>> all_ids(docs.size());
    for (size_t di = 0; di < docs.size(); ++di) {
        std::vector<int32_t> ids = tok->encode(docs[di].text, tok->adds_bos(), false);
        if (static_cast<int64_t>(ids.size()) > ctx_len) ids.resize(static_cast<size_t>(ctx_len));
        all_ids[di] = ids;
        peak.assign(ids.size() * K, 0.0f);
        peak_layer.assign(ids.size() * K, -1);
        cur_doc = static_cast<int64_t>(di);
        ctx.clear();
        ctx.decode(ids, false);
        for (size_t t = 0; t < ids.size(); ++t) {
            const int c = token_class(*tok, ids[t]);
            ++class_count[static_cast<size_t>(c)];
            for (size_t k = 0; k < K; ++k) {
                const float v = peak[t * K + k];
                class_sum[k * 6 + static_cast<size_t>(c)] += std::fabs(v);
                std::vector<Hit>& b = best[k];
                const Hit h{v, peak_layer[t * K + k], cur_doc, static_cast<int32_t>(t), ids[t]};
                auto weaker = [](const Hit& a, const Hit& x) { return std::fabs(a.value) > std::fabs(x.value); };
                if (static_cast<int>(b.size()) < top || weaker(h, b.back())) {
                    b.insert(std::upper_bound(b.begin(), b.end(), h, weaker), h);
                    if (static_cast<int>(b.size()) > top) b.pop_back();
                }
            }
        }
        n_tokens += static_cast<int64_t>(ids.size());
    }

    json out;
    out["format"] = "critdim.explain";
    out["version"] = 1;
    out["model"] = {{"path", model_path}, {"hash", hash_file(model_path)}};
    out["critical"] = critical_path;
    out["point"] = point;
    out["n_docs"] = docs.size();
    out["n_tokens"] = n_tokens;
    out["classes"] = json::array();
    for (size_t c = 0; c < 6; ++c) out["classes"].push_back({{"name", kClasses[c]}, {"tokens", class_count[c]}});
    json jd = json::array();
    for (size_t k = 0; k < K; ++k) {
        json tops = json::array();
        for (const Hit& h : best[k]) {
            const auto& ids = all_ids[static_cast<size_t>(h.doc)];
            const size_t b = static_cast<size_t>(std::max(0, h.pos - 8)),
                         e = std::min(ids.size(), static_cast<size_t>(h.pos) + 4);
            std::string before, after;
            for (size_t i = b; i < static_cast<size_t>(h.pos); ++i) before += tok->token_to_piece(ids[i], true);
            for (size_t i = static_cast<size_t>(h.pos) + 1; i < e; ++i) after += tok->token_to_piece(ids[i], true);
            tops.push_back({{"value", h.value},
                            {"layer", h.layer},
                            {"doc", h.doc},
                            {"pos", h.pos},
                            {"token", h.token},
                            {"piece", tok->token_to_piece(h.token, true)},
                            {"before", before},
                            {"after", after},
                            {"source", docs[static_cast<size_t>(h.doc)].source}});
        }
        json cls = json::object();
        for (size_t c = 0; c < 6; ++c)
            cls[kClasses[c]] = class_count[c] ? class_sum[k * 6 + c] / static_cast<double>(class_count[c]) : 0.0;
        json layers = json::array();
        for (int l = 0; l < L; ++l)
            layers.push_back(heat[static_cast<size_t>(l) * K + k] / std::max<int64_t>(1, n_tokens));
        jd.push_back(
            {{"dim", dims[k]}, {"top_tokens", tops}, {"mean_abs_by_class", cls}, {"mean_abs_by_layer", layers}});
    }
    out["dims"] = jd;
    return out.dump(2) + "\n";
}

std::string explain_html(const std::string& json_text) {
    const json j = json::parse(json_text);
    std::string h =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>critdim explain</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;font-size:13px}code{background:#f3f3f3}b.hit{background:#fd6}</style></head><body>\n";
    h += "<h1>Critical dimensions: what they detect</h1>\n<p>Model <code>" + escape_html(j["model"]["path"]) +
         "</code>, point <code>" + escape_html(j["point"]) + "</code>, " + std::to_string(j["n_docs"].get<int64_t>()) +
         " documents, " + std::to_string(j["n_tokens"].get<int64_t>()) + " tokens.</p>\n";
    // Heatmap: layers (rows) x dimensions (columns), colour by mean |x| relative to the maximum.
    const auto& dims = j["dims"];
    const size_t K = dims.size(), L = dims[0]["mean_abs_by_layer"].size();
    double vmax = 1e-12;
    for (const auto& d : dims)
        for (const auto& v : d["mean_abs_by_layer"]) vmax = std::max(vmax, v.get<double>());
    const int cw = 40, ch = 16, left = 60, topm = 30;
    h += "<h2>Mean |x| per layer and dimension</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         std::to_string(left + cw * static_cast<int>(K) + 10) + "\" height=\"" +
         std::to_string(topm + ch * static_cast<int>(L) + 10) + "\">\n";
    for (size_t k = 0; k < K; ++k)
        h += "<text x=\"" + std::to_string(left + cw * static_cast<int>(k) + 4) + "\" y=\"20\" font-size=\"11\">" +
             std::to_string(dims[k]["dim"].get<int64_t>()) + "</text>\n";
    for (size_t l = 0; l < L; ++l) {
        h += "<text x=\"4\" y=\"" + std::to_string(topm + ch * static_cast<int>(l) + 12) +
             "\" font-size=\"11\">layer " + std::to_string(l) + "</text>\n";
        for (size_t k = 0; k < K; ++k) {
            const double v = dims[k]["mean_abs_by_layer"][l].get<double>();
            const int shade = 255 - static_cast<int>(std::lround(200.0 * v / vmax));
            char rect[256];
            std::snprintf(rect, sizeof rect,
                          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                          "fill=\"rgb(255,%d,%d)\"><title>%.4g</title></rect>\n",
                          left + cw * static_cast<int>(k), topm + ch * static_cast<int>(l), cw - 1, ch - 1, shade,
                          shade, v);
            h += rect;
        }
    }
    h += "</svg>\n";
    for (const auto& d : dims) {
        h += "<h2>Dimension " + std::to_string(d["dim"].get<int64_t>()) + "</h2>\n<p>Mean |x| by token class: ";
        for (const auto& [name, v] : d["mean_abs_by_class"].items()) {
            char buf[128];
            std::snprintf(buf, sizeof buf, "%s %.3g; ", name.c_str(), v.get<double>());
            h += escape_html(buf);
        }
        h += "</p>\n<table><tr><th>value</th><th>layer</th><th>token</th><th>context</th><th>source</th></tr>\n";
        for (const auto& t : d["top_tokens"]) {
            char v[64];
            std::snprintf(v, sizeof v, "%.4g", t["value"].get<double>());
            h += "<tr><td>" + std::string(v) + "</td><td>" + std::to_string(t["layer"].get<int>()) + "</td><td><code>" +
                 escape_html(t["piece"]) + "</code></td><td>" + escape_html(t["before"]) + "<b class=\"hit\">" +
                 escape_html(t["piece"]) + "</b>" + escape_html(t["after"]) + "</td><td>" + escape_html(t["source"]) +
                 "</td></tr>\n";
        }
        h += "</table>\n";
    }
    h += "</body></html>\n";
    return h;
}

}  // namespace critdim::analysis
