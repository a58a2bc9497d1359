// critdim import-cvector cv.gguf [more.gguf ...] [--scale S ...] [--layer-range A B] --out plan.json:
// llama.cpp (or repeng) control vectors as a steering plan, with the meaning of llama.cpp's
// --control-vector-scaled FILE S (once per file) and --control-vector-layer-range A B
// (docs/steering.md).
#include "cli/commands.hpp"
#include "critdim/steer.hpp"

namespace critdim::cli {

void register_import_cvector(CLI::App& app) {
    auto* cmd = app.add_subcommand("import-cvector", "a llama.cpp control vector (GGUF) as a steering plan");
    static std::vector<std::string> in;
    static std::string out;
    static std::vector<double> scales;
    static std::vector<int64_t> range;
    cmd->add_option("cvector", in, "control vector GGUF files (direction.N tensors); several are summed")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--scale", scales, "multiplies the directions (llama.cpp --control-vector-scaled FILE S): "
                                       "one for every file, or one per file; default 1");
    cmd->add_option("--layer-range", range, "steer blocks A..B inclusive (A <= 0 counts as 1; default 1..last)")
        ->expected(2)
        ->type_name("A B");
    cmd->add_option("--out", out, "plan to write (JSON)")->required();
    cmd->callback([] {
        if (scales.size() > 1 && scales.size() != in.size())
            throw_usage("--scale: " + std::to_string(scales.size()) + " values for " + std::to_string(in.size()) +
                        " files (give one, or one per file)");
        std::vector<steer::CvectorFile> files;
        for (size_t i = 0; i < in.size(); ++i)
            files.push_back({in[i], scales.empty() ? 1.0 : scales[scales.size() == 1 ? 0 : i]});
        const int64_t a = range.size() == 2 ? range[0] : 0, b = range.size() == 2 ? range[1] : 0;
        steer::save_plan(steer::import_cvectors(files, a, b), out);
    });
}

}  // namespace critdim::cli
