#include "cli/commands.hpp"

namespace critdim::cli {

void register_commands(CLI::App& app) {
    register_tokenize(app);
}

}  // namespace critdim::cli
