// Pieces every command shares: option helpers, token-list parsing, model and context setup.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "critdim/model.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::cli {

// "1,2,3" -> {1, 2, 3}; a usage error names the bad item.
std::vector<int32_t> parse_token_list(const std::string& text);

// -t/--threads with the default "all cores".
void add_threads_option(CLI::App* cmd, int& threads);

// Prints to stderr unless quiet; progress lines overwrite themselves on a terminal.
void log(const std::string& message);

}  // namespace critdim::cli
