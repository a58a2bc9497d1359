// Every subcommand registers itself on the CLI11 app; each lives in its own file.
#pragma once

#include <CLI/CLI.hpp>

namespace critdim::cli {

void register_commands(CLI::App& app);
void register_tokenize(CLI::App& app);

void register_info(CLI::App& app);
void register_dump(CLI::App& app);
void register_synth(CLI::App& app);
void register_bench(CLI::App& app);
void register_generate(CLI::App& app);
void register_ppl(CLI::App& app);
void register_scan(CLI::App& app);
void register_merge(CLI::App& app);
void register_find(CLI::App& app);
void register_explain(CLI::App& app);
void register_import_cvector(CLI::App& app);
void register_export_cvector(CLI::App& app);
void register_vector(CLI::App& app);
void register_judge(CLI::App& app);
void register_mmlu(CLI::App& app);
void register_jailbreak(CLI::App& app);
void register_ablate(CLI::App& app);
void register_reproduce(CLI::App& app);
void register_serve(CLI::App& app);
void register_slurm(CLI::App& app);

}  // namespace critdim::cli
