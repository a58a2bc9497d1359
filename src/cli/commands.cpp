#include "cli/commands.hpp"

namespace critdim::cli {

void register_commands(CLI::App& app) {
    register_info(app);
    register_tokenize(app);
    register_dump(app);
    register_generate(app);
    register_ppl(app);
    register_synth(app);
    register_bench(app);
    register_scan(app);
    register_merge(app);
    register_find(app);
    register_explain(app);
    register_import_cvector(app);
    register_export_cvector(app);
    register_vector(app);
    register_judge(app);
    register_mmlu(app);
    register_jailbreak(app);
    register_ablate(app);
    register_reproduce(app);
    register_serve(app);
    register_slurm(app);
}

}  // namespace critdim::cli
