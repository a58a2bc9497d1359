// critdim ablate MODEL --data DIR --stats S.stats [--dims LIST|all] [--mode zero|mean]
// [--critical critical.json]: the masking study. Each dimension is ablated at every block output
// (not the embedding); the accuracy drop per subject ranks the dimensions, the Rank-1/10/100
// table gives the accuracy with the dimension of that magnitude rank ablated, and the overlap
// says how much of each critical set the ablation ranking recovers.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/eval.hpp"

namespace critdim::cli {

namespace {

std::vector<int64_t> parse_dims(const std::string& text, int64_t n_embd) {
    std::vector<int64_t> dims;
    if (text == "all") {
        for (int64_t d = 0; d < n_embd; ++d) dims.push_back(d);
        return dims;
    }
    for (int32_t d : parse_token_list(text)) dims.push_back(d);
    return dims;
}

void add_unique(std::vector<int64_t>& v, int64_t x) {
    if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

}  // namespace

void register_ablate(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("ablate", "accuracy drop per subject when one dimension is zeroed (or set to its mean)");
    static std::string path, data, stats_path, dims_text, mode = "zero", critical, out;
    static std::vector<std::string> subjects;
    static std::vector<int64_t> ranks = {1, 10, 100};
    static int64_t questions = 0, seed = -1, top = 10;
    static eval::McqOptions mo;
    static bool json = false;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("--data", data, "MMLU folder")->required();
    cmd->add_option("--subjects", subjects, "subjects (default: all)")->delimiter(',');
    cmd->add_option("--questions", questions, "questions per subject (0: all)")->check(CLI::NonNegativeNumber);
    cmd->add_option("--seed", seed, "sample the questions with this seed instead of taking the first N");
    cmd->add_option("--stats", stats_path, "scan statistics: magnitude ranks, and the means for --mode mean")
        ->check(CLI::ExistingFile);
    cmd->add_option("--dims", dims_text,
                    "dimensions to ablate: a list or 'all' (default: the --ranks and the --top "
                    "dims by magnitude, and the --critical dims)");
    cmd->add_option("--mode", mode, "zero, or mean (needs --stats)")
        ->capture_default_str()
        ->check(CLI::IsMember({"zero", "mean"}));
    cmd->add_option("--ranks", ranks, "magnitude ranks of the table")->delimiter(',')->capture_default_str();
    cmd->add_option("--top", top, "with no --dims: also the top N dims by magnitude")->capture_default_str();
    cmd->add_option("--critical", critical, "critical.json: overlap of each set with the ablation ranking")
        ->check(CLI::ExistingFile);
    cmd->add_option("--ctx", mo.n_ctx, "context size (default: the training context)");
    cmd->add_flag("--chat", mo.chat, "render each prompt as a user turn of the chat template");
    cmd->add_option("--out", out, "also write the JSON result to this file");
    cmd->add_flag("--json", json, "machine-readable result");
    add_threads_option(cmd, mo.n_threads);
    cmd->callback([] {
        if (mode == "mean" && stats_path.empty()) throw_usage("--mode mean needs --stats FILE");
        if (dims_text.empty() && stats_path.empty() && critical.empty())
            throw_usage("ablate: give --dims, or --stats (magnitude ranks) or --critical to choose the dimensions");
        const std::vector<eval::McqQuestion> qs = eval::load_mmlu(data, subjects, questions, seed);
        auto m = model::Model::load(path);
        auto tok = tokenizer::Tokenizer::from_gguf(m->file());
        const int64_t n_embd = m->hparams().n_embd;
        std::unique_ptr<analysis::Stats> stats;
        std::vector<int64_t> by_magnitude;
        if (!stats_path.empty()) {
            stats = std::make_unique<analysis::Stats>(analysis::Stats::read(stats_path));
            if (stats->n_embd() != n_embd)
                throw Error(ErrorKind::mismatch, stats_path,
                            "n_embd " + std::to_string(stats->n_embd()) + " does not match the model's " +
                                std::to_string(n_embd));
            by_magnitude = eval::magnitude_ranking(*stats);
        }
        const auto sets = critical.empty() ? std::vector<std::pair<std::string, std::vector<int64_t>>>{}
                                           : eval::read_critical_dims(critical);
        std::vector<int64_t> dims;
        if (!dims_text.empty())
            dims = parse_dims(dims_text, n_embd);
        else {
            for (int64_t r : ranks)
                if (r >= 1 && r <= static_cast<int64_t>(by_magnitude.size()))
                    add_unique(dims, by_magnitude[static_cast<size_t>(r - 1)]);
            for (int64_t i = 0; i < top && i < static_cast<int64_t>(by_magnitude.size()); ++i)
                add_unique(dims, by_magnitude[static_cast<size_t>(i)]);
            for (const auto& s : sets)
                for (int64_t d : s.second) add_unique(dims, d);
        }
        mo.progress = !json;
        eval::McqScorer scorer(*m, *tok, mo);
        scorer.prepare(qs);
        const eval::AblationResult r =
            eval::run_ablation(scorer, qs, dims, mode == "mean" ? stats.get() : nullptr, by_magnitude, !json);
        std::vector<int64_t> ranked;
        for (const auto& row : r.rows) ranked.push_back(row.dim);

        auto acc = [](const eval::Accuracy& a) {
            return nlohmann::json{{"accuracy", a.acc}, {"ci95", {a.ci_low, a.ci_high}}, {"n", a.n}};
        };
        nlohmann::json rows = nlohmann::json::array(), table = nlohmann::json::array(), ov = nlohmann::json::array();
        for (const auto& row : r.rows) {
            nlohmann::json per = nlohmann::json::object();
            for (size_t s = 0; s < r.subjects.size(); ++s)
                per[r.subjects[s]] = {{"accuracy", row.per_subject[s].acc},
                                      {"drop", r.baseline[s].acc - row.per_subject[s].acc}};
            rows.push_back({{"dim", row.dim},
                            {"magnitude_rank", row.magnitude_rank},
                            {"overall", acc(row.overall)},
                            {"drop", row.drop},
                            {"subjects", per}});
        }
        for (int64_t rank : ranks) {
            if (rank < 1 || rank > static_cast<int64_t>(by_magnitude.size())) continue;
            const int64_t dim = by_magnitude[static_cast<size_t>(rank - 1)];
            const auto it =
                std::find_if(r.rows.begin(), r.rows.end(), [&](const eval::AblationRow& x) { return x.dim == dim; });
            if (it == r.rows.end()) continue;
            table.push_back({{"rank", rank}, {"dim", dim}, {"accuracy", it->overall.acc}, {"drop", it->drop}});
        }
        for (const auto& [name, set] : sets) {
            // The ranking of the matching subject where the domain is one, else the overall drop.
            std::vector<int64_t> order = ranked;
            const auto sub = std::find(r.subjects.begin(), r.subjects.end(), name);
            if (sub != r.subjects.end()) {
                const size_t s = static_cast<size_t>(sub - r.subjects.begin());
                std::vector<const eval::AblationRow*> rs;
                for (const auto& row : r.rows) rs.push_back(&row);
                std::stable_sort(rs.begin(), rs.end(),
                                 [&](auto* a, auto* b) { return a->per_subject[s].acc < b->per_subject[s].acc; });
                order.clear();
                for (auto* row : rs) order.push_back(row->dim);
            }
            order.resize(std::min(order.size(), set.size()));
            ov.push_back(
                {{"domain", name}, {"critical", set}, {"ablation_top", order}, {"overlap", eval::overlap(set, order)}});
        }
        nlohmann::json base = nlohmann::json::object();
        for (size_t s = 0; s < r.subjects.size(); ++s) base[r.subjects[s]] = acc(r.baseline[s]);
        const nlohmann::json j = {{"format", "critdim-ablation"},
                                  {"version", 1},
                                  {"model", path},
                                  {"mode", r.mode},
                                  {"point", "resid_post"},
                                  {"layers", "all (embedding excluded)"},
                                  {"scoring", scorer.scoring_case()},
                                  {"baseline", {{"overall", acc(r.baseline_overall)}, {"subjects", base}}},
                                  {"dims", rows},
                                  {"rank_table", table},
                                  {"overlap", ov}};
        if (!out.empty()) write_file_atomic(out, j.dump(2) + "\n");
        if (json) {
            std::printf("%s\n", j.dump(2).c_str());
            return;
        }
        std::printf("baseline accuracy %.4f (%lld questions), %s ablation at resid_post.0-%lld\n",
                    r.baseline_overall.acc, static_cast<long long>(r.baseline_overall.n), r.mode.c_str(),
                    static_cast<long long>(m->hparams().n_layer - 1));
        std::printf("%8s %6s %10s %8s\n", "dim", "mag.rk", "accuracy", "drop");
        for (const auto& row : r.rows)
            std::printf("%8lld %6lld %10.4f %8.4f\n", static_cast<long long>(row.dim),
                        static_cast<long long>(row.magnitude_rank), row.overall.acc, row.drop);
        if (!table.empty()) {
            std::printf("\n%-10s %6s %10s\n", "rank", "dim", "accuracy");
            std::printf("%-10s %6s %10.4f\n", "none", "-", r.baseline_overall.acc);
            for (const auto& t : table)
                std::printf("Rank-%-5lld %6lld %10.4f\n", t["rank"].get<long long>(), t["dim"].get<long long>(),
                            t["accuracy"].get<double>());
        }
        for (const auto& o : ov)
            std::printf("overlap %s: %.2f\n", o["domain"].get<std::string>().c_str(), o["overlap"].get<double>());
    });
}

}  // namespace critdim::cli
