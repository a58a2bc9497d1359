// The HTML report of `reproduce`: one self-contained file (inline CSS, SVG and a few lines of
// script, nothing fetched) rendered from results.json.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "critdim/eval.hpp"

namespace critdim::eval {

namespace {

using json = nlohmann::json;

std::string esc(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '&':
                o += "&amp;";
                break;
            case '<':
                o += "&lt;";
                break;
            case '>':
                o += "&gt;";
                break;
            case '"':
                o += "&quot;";
                break;
            default:
                o += c;
        }
    }
    return o;
}

std::string num(double v, const char* f = "%.4g") {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string pct(double v) { return num(100.0 * v, "%.1f") + "%"; }

struct Series {
    std::string name, color;
    std::vector<std::pair<double, double>> points;  // (alpha, value)
    bool dashed = false;
};

// A line chart with the alphas equally spaced on the x axis (they form a geometric grid).
std::string chart(const std::string& title, const std::string& y_label, const std::vector<Series>& series) {
    std::vector<double> xs;
    double lo = INFINITY, hi = -INFINITY;
    for (const Series& s : series)
        for (const auto& [x, y] : s.points) {
            if (std::find(xs.begin(), xs.end(), x) == xs.end()) xs.push_back(x);
            if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y);
        }
    std::sort(xs.begin(), xs.end());
    if (xs.empty() || !std::isfinite(lo)) return "<p class=\"muted\">" + esc(title) + ": no data</p>";
    if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
    const double pad = (hi - lo) * 0.08;
    lo -= pad, hi += pad;
    const double W = 470, H = 260, L = 66, R = 14, T = 28, B = 40;
    auto px = [&](double x) {
        const size_t i = static_cast<size_t>(std::find(xs.begin(), xs.end(), x) - xs.begin());
        return L + (xs.size() == 1 ? 0.5 : static_cast<double>(i) / static_cast<double>(xs.size() - 1)) * (W - L - R);
    };
    auto py = [&](double y) { return T + (hi - y) / (hi - lo) * (H - T - B); };
    std::string s = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" +
                    num(H) + "\" viewBox=\"0 0 " + num(W) + " " + num(H) + "\" role=\"img\" aria-label=\"" +
                    esc(title) + "\">";
    s += "<text x=\"" + num(W / 2) + "\" y=\"16\" text-anchor=\"middle\" class=\"title\">" + esc(title) + "</text>";
    for (int k = 0; k <= 4; ++k) {
        const double y = lo + (hi - lo) * k / 4.0;
        s += "<line x1=\"" + num(L) + "\" x2=\"" + num(W - R) + "\" y1=\"" + num(py(y)) + "\" y2=\"" + num(py(y)) +
             "\" class=\"grid\"/>";
        s += "<text x=\"" + num(L - 4) + "\" y=\"" + num(py(y) + 4) + "\" text-anchor=\"end\">" + num(y, "%.3g") +
             "</text>";
    }
    for (double x : xs)
        s += "<text x=\"" + num(px(x)) + "\" y=\"" + num(H - B + 16) + "\" text-anchor=\"middle\">" + num(x, "%g") +
             "</text>";
    s += "<text x=\"" + num((L + W - R) / 2) + "\" y=\"" + num(H - 6) + "\" text-anchor=\"middle\">alpha</text>";
    s += "<text x=\"12\" y=\"" + num((T + H - B) / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 12 " +
         num((T + H - B) / 2) + ")\">" + esc(y_label) + "</text>";
    double legend_x = L + 6;
    for (const Series& se : series) {
        std::string pts;
        for (const auto& [x, y] : se.points)
            if (std::isfinite(y)) pts += num(px(x), "%.1f") + "," + num(py(y), "%.1f") + " ";
        s += "<polyline fill=\"none\" stroke=\"" + se.color + "\" stroke-width=\"2\"" +
             (se.dashed ? " stroke-dasharray=\"5 4\"" : "") + " points=\"" + pts + "\"/>";
        for (const auto& [x, y] : se.points)
            if (std::isfinite(y))
                s += "<circle cx=\"" + num(px(x), "%.1f") + "\" cy=\"" + num(py(y), "%.1f") + "\" r=\"3\" fill=\"" +
                     se.color + "\"><title>" + esc(se.name) + " alpha " + num(x, "%g") + ": " + num(y) +
                     "</title></circle>";
        s += "<rect x=\"" + num(legend_x) + "\" y=\"" + num(T + 2) + "\" width=\"10\" height=\"10\" fill=\"" +
             se.color + "\"/>";
        s += "<text x=\"" + num(legend_x + 14) + "\" y=\"" + num(T + 11) + "\">" + esc(se.name) + "</text>";
        legend_x += 22 + 7.0 * static_cast<double>(se.name.size());
    }
    return s + "</svg>";
}

Series curve_series(const json& curve, const char* key, const std::string& name, const std::string& color) {
    Series s{name, color, {}};
    for (const json& p : curve)
        if (p.contains(key) && p[key].is_number())
            s.points.emplace_back(p["alpha"].get<double>(), p[key].get<double>());
    return s;
}

// [A, B] as "blocks A-B" text ("A" when one block).
std::string blocks(const json& range) {
    if (!range.is_array() || range.size() != 2) return "";
    const int a = range[0].get<int>(), b = range[1].get<int>();
    return a == b ? std::to_string(a) : std::to_string(a) + "-" + std::to_string(b);
}

const char* kWhole = "#d95f02";
const char* kCds = "#1b9e77";
const char* kBase = "#7570b3";

}  // namespace

std::string reproduce_report_html(const std::string& results_json) {
    const json r = json::parse(results_json);
    const json& st = r["settings"];
    const json& mmlu = r["mmlu"];
    std::string h = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>critdim reproduce report</title>
<script>window.addEventListener('error', function (e) { document.documentElement.setAttribute('data-js-error', String(e.message)); });</script>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; cursor: pointer; } td.l, th.l { text-align: left; }
.cds { background: #e5f5ef; } .whole { background: #fdebdc; } .muted { color: #777; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } svg.chart { border: 1px solid #eee; background: #fff; }
svg text { font-size: 11px; fill: #333; } svg text.title { font-size: 13px; font-weight: 600; } svg .grid { stroke: #eee; }
.big { font-size: 18px; font-weight: 600; }
</style></head><body>
)";
    h += "<h1>critdim reproduce: " + esc(r["model"]["path"].get<std::string>()) + "</h1>\n";
    h += "<p class=\"muted\">" + esc(r["model"]["arch"].get<std::string>()) + ", n_embd " +
         r["model"]["n_embd"].dump() + ", " + r["model"]["n_layer"].dump() + " layers; critdim " +
         esc(r["critdim_version"].get<std::string>()) + "; " + num(r["seconds"].get<double>(), "%.1f") +
         " s (estimate " + num(r["estimate_seconds"].get<double>(), "%.1f") + " s)</p>\n";

    // Headline numbers next to the paper's.
    const json& w = mmlu["wins"];
    h += "<h2>Headline</h2><table><tr><th class=\"l\">result</th><th>this run</th><th>paper</th></tr>";
    h += "<tr><td class=\"l\">MMLU subjects where CDS beats whole-vector steering</td><td class=\"big\">" +
         w["cds"].dump() + " of " + w["n_subjects"].dump() + "</td><td>34 of 57</td></tr>";
    h += "<tr><td class=\"l\">... where whole-vector wins / ties</td><td>" + w["whole"].dump() + " / " +
         w["ties"].dump() + "</td><td></td></tr>";
    if (!r["jailbreak"].is_null()) {
        const json& jb = r["jailbreak"];
        h += "<tr><td class=\"l\">AdvBench attack success, CDS vs whole-vector (evaluation split)</td><td "
             "class=\"big\">" +
             pct(jb["cds"]["evaluate_asr"].get<double>()) + " vs " + pct(jb["whole"]["evaluate_asr"].get<double>()) +
             "</td><td>92% vs 84%</td></tr>";
        h += "<tr><td class=\"l\">AdvBench attack success without steering</td><td>" +
             pct(jb["baseline"]["evaluate_asr"].get<double>()) + "</td><td></td></tr>";
    }
    h += "</table>\n";

    // Accuracy vs alpha: mean over subjects of the identification-split accuracy.
    h += "<h2>Steering sweeps (identification split; alpha chosen there)</h2><div class=\"charts\">";
    {
        std::map<double, std::pair<double, int>> whole, cds, base;
        for (const json& s : mmlu["subjects"])
            for (const auto& [method, acc] : {std::pair{"whole", &whole}, std::pair{"cds", &cds}})
                for (const json& p : s[method]["curve"]) {
                    auto& e = (*acc)[p["alpha"].get<double>()];
                    e.first += p["accuracy"].get<double>(), ++e.second;
                    auto& b = base[p["alpha"].get<double>()];
                    if (std::string(method) == "whole") b.first += s["baseline_identify"].get<double>(), ++b.second;
                }
        auto mean = [](const std::map<double, std::pair<double, int>>& m, const std::string& n, const std::string& c,
                       bool d) {
            Series s{n, c, {}, d};
            for (const auto& [a, e] : m) s.points.emplace_back(a, e.first / e.second);
            return s;
        };
        h += chart("MMLU accuracy vs alpha (mean over subjects)", "accuracy",
                   {mean(whole, "whole-vector", kWhole, false), mean(cds, "CDS", kCds, false),
                    mean(base, "no steering", kBase, true)});
    }
    if (!r["jailbreak"].is_null()) {
        const json& jb = r["jailbreak"];
        h += chart("AdvBench attack success vs alpha", "attack success rate",
                   {curve_series(jb["whole"]["curve"], "asr", "whole-vector", kWhole),
                    curve_series(jb["cds"]["curve"], "asr", "CDS", kCds)});
    }
    if (!r["coherence"].is_null()) {
        const json& c = r["coherence"];
        Series base{"no steering", kBase, {}, true};
        for (const json& p : c["whole"]["curve"])
            base.points.emplace_back(p["alpha"].get<double>(), p["baseline_ppl"].get<double>());
        h += chart("Perplexity vs alpha (jailbreak vectors)", "perplexity",
                   {curve_series(c["whole"]["curve"], "ppl", "whole-vector", kWhole),
                    curve_series(c["cds"]["curve"], "ppl", "CDS", kCds), base});
        h += chart("KL(steered || unsteered) vs alpha", "nats per token",
                   {curve_series(c["whole"]["curve"], "kl", "whole-vector", kWhole),
                    curve_series(c["cds"]["curve"], "kl", "CDS", kCds)});
    }
    h += "</div>\n";

    // Per-subject win table.
    h += "<h2>Per subject (evaluation split)</h2><table id=\"subjects\" class=\"sortable\"><thead><tr><th "
         "class=\"l\">subject</th>"
         "<th class=\"l\">critical dims</th><th>baseline</th><th>whole alpha</th><th class=\"l\">whole "
         "layers</th><th>whole</th><th>CDS alpha</th><th>CDS k</th><th class=\"l\">CDS layers</th><th>CDS</th>"
         "<th class=\"l\">winner</th></tr></thead><tbody>";
    for (const json& s : mmlu["subjects"]) {
        std::string dims;
        for (const json& d : s["critical_dims"]) dims += (dims.empty() ? "" : " ") + d.dump();
        const std::string win = s["winner"].get<std::string>();
        h += "<tr class=\"" + (win == "tie" ? std::string() : win) + "\"><td class=\"l\">" +
             esc(s["subject"].get<std::string>()) + "</td><td class=\"l\">" + esc(dims.empty() ? "none" : dims) +
             "</td><td>" + num(s["baseline_evaluate"].get<double>()) + "</td><td>" +
             num(s["whole"]["alpha"].get<double>(), "%g") + "</td><td class=\"l\">" +
             blocks(s["whole"].value("layers", json())) + "</td><td>" + num(s["whole"]["evaluate"].get<double>()) +
             "</td><td>" + num(s["cds"]["alpha"].get<double>(), "%g") + "</td><td>" +
             s["cds"].value("k", json("")).dump() + "</td><td class=\"l\">" + blocks(s["cds"].value("layers", json())) +
             "</td><td>" + num(s["cds"]["evaluate"].get<double>()) + "</td><td class=\"l\">" + win + "</td></tr>";
    }
    h += "</tbody></table>\n";

    // The k and layer sweep: every combination's mean over subjects (each at its own identification alpha).
    if (mmlu.contains("sweep") && mmlu["sweep"].is_array()) {
        h += "<h2>k and layer sweep (mean over subjects, each combination at its own identification-split "
             "alpha)</h2><table id=\"sweep\" class=\"sortable\"><thead><tr><th class=\"l\">method</th><th>k</th>"
             "<th class=\"l\">layers</th><th>identification</th><th>evaluation</th><th>chosen for "
             "subjects</th></tr></thead><tbody>";
        for (const json& c : mmlu["sweep"]) {
            const std::string method = c["method"].get<std::string>();
            h += "<tr class=\"" + method + "\"><td class=\"l\">" + (method == "cds" ? "CDS" : "whole-vector") +
                 "</td><td>" + (c["k"].is_null() ? std::string() : c["k"].dump()) + "</td><td class=\"l\">" +
                 blocks(c["layers"]) + "</td><td>" + num(c["mean_identify"].get<double>()) + "</td><td>" +
                 num(c["mean_evaluate"].get<double>()) + "</td><td>" + c["chosen"].dump() + "</td></tr>";
        }
        h += "</tbody></table><p class=\"muted\">Each method's result per subject is the combination with the best "
             "identification-split accuracy; the evaluation column is shown, never used to choose.</p>\n";
    }

    // Masking.
    const json& ab = r["ablation"];
    h += "<h2>Masking (one dimension ablated at every block output, evaluation split)</h2><table><tr><th class=\"l\">"
         "dimension</th><th>dim</th><th>zero</th><th>mean</th></tr><tr><td class=\"l\">none</td><td></td><td>" +
         num(ab["baseline"].get<double>()) + "</td><td>" + num(ab["baseline"].get<double>()) + "</td></tr>";
    for (const json& t : ab["rank_table"])
        h += "<tr><td class=\"l\">Rank-" + t["rank"].dump() + " by magnitude</td><td>" + t["dim"].dump() + "</td><td>" +
             num(t["zero"].get<double>()) + "</td><td>" + num(t["mean"].get<double>()) + "</td></tr>";
    h += "</table><p>Mean overlap of each subject's critical set with its ablation ranking: " +
         num(ab["mean_overlap"].get<double>(), "%.3f") + " (over " + std::to_string(ab["overlap"].size()) +
         " subjects with a critical set).</p>\n";

    h += "<h2>Settings</h2><pre>" + esc(st.dump(2)) + "</pre>\n";
    h += R"(<script>
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute('data-asc') !== '1';
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent, nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    th.setAttribute('data-asc', asc ? '1' : '0');
  });
});
document.body.setAttribute('data-rendered', String(document.querySelectorAll('svg.chart').length));
</script>
</body></html>
)";
    return h;
}

}  // namespace critdim::eval
