// Pieces every command shares: option helpers, token-list parsing, model and context setup.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "critdim/model.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::cli {

// "1,2,3" -> {1, 2, 3}; a usage error names the bad item.
std::vector<int32_t> parse_token_list(const std::string& text);

// -t/--threads with the default "all cores".
void add_threads_option(CLI::App* cmd, int& threads);

// The prompt as the model's chat template renders one user turn (after an optional system
// turn) with the generation prompt; `template_name` overrides the model's template with a
// built-in one. A model without a template and no override is a usage error.
std::string render_chat_prompt(const tokenizer::Tokenizer& tok, const std::string& where, const std::string& user,
                               const std::string& system, const std::string& template_name);
// The same as a function of the user text, the template parsed once (for whole corpora).
std::function<std::string(const std::string&)> chat_prompt_renderer(const tokenizer::Tokenizer& tok,
                                                                    const std::string& where, const std::string& system,
                                                                    const std::string& template_name);

// Prints to stderr unless quiet; progress lines overwrite themselves on a terminal.
void log(const std::string& message);

}  // namespace critdim::cli
