#include "cli/commands.hpp"

namespace critdim::cli {

void register_commands(CLI::App& app) { (void)app; }

}  // namespace critdim::cli
