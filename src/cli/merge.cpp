// critdim merge A B ... --out C: adds stats files (shards of one scan, or several corpora) in
// the order given; the summation order is documented in docs/formats.md.
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "critdim/analysis.hpp"

namespace critdim::cli {

void register_merge(CLI::App& app) {
    auto* cmd = app.add_subcommand("merge", "add stats files (shards or corpora) into one");
    static std::vector<std::string> inputs;
    static std::string out, name;
    cmd->add_option("inputs", inputs, "stats files, added in this order")->required();
    cmd->add_option("--out", out, "merged stats file")->required();
    cmd->add_option("--name", name, "domain name of the result (default: the first file's)");
    cmd->callback([] {
        analysis::Stats merged = analysis::Stats::read(inputs.front());
        if (!merged.header.complete) throw_input(inputs.front(), "is a checkpoint of an unfinished scan, not a stats file");
        for (size_t i = 1; i < inputs.size(); ++i) analysis::merge_into(merged, analysis::Stats::read(inputs[i]), inputs[i]);
        if (!name.empty()) merged.header.name = name;
        merged.write(out);
        std::printf("%s: %zu files, %lld documents\n", out.c_str(), inputs.size(),
                    static_cast<long long>(merged.header.n_docs));
    });
}

}  // namespace critdim::cli
