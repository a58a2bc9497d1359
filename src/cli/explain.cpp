// critdim explain MODEL --dims critical.json --corpus SPEC --out report.html: what the critical
// dimensions detect, as one self-contained HTML file and its JSON twin (report.json).
#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/analysis.hpp"

namespace critdim::cli {

void register_explain(CLI::App& app) {
    auto* cmd = app.add_subcommand("explain", "report the top tokens, token classes and layers of critical dimensions");
    static std::string path, dims, out, field = "text";
    static std::vector<std::string> corpus;
    static int top = 10, threads = 0;
    static int64_t n_ctx = 0;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("--dims", dims, "critical.json from find")->required();
    cmd->add_option("--corpus", corpus, "[FORMAT:]PATH, repeatable (as scan)")->required();
    cmd->add_option("--field", field, "jsonl: the member; csv: the column")->capture_default_str();
    cmd->add_option("--out", out, "report.html; its JSON twin goes next to it with .json")->required();
    cmd->add_option("--top", top, "top tokens per dimension")->capture_default_str()->check(CLI::Range(1, 1000));
    cmd->add_option("--ctx", n_ctx, "context length; longer documents are cut (default: the model's)");
    add_threads_option(cmd, threads);
    cmd->callback([] {
        const std::vector<analysis::CorpusSpec> specs = analysis::parse_corpus_specs(corpus, field);
        const std::string j = analysis::explain_json(path, dims, specs, top, n_ctx, threads);
        const std::string json_path = std::filesystem::path(out).replace_extension(".json").string();
        write_file_atomic(json_path, j);
        write_file_atomic(out, analysis::explain_html(j));
        std::printf("%s\n%s\n", out.c_str(), json_path.c_str());
    });
}

}  // namespace critdim::cli
