// Shared by the eval tests: the shared data, stories260K, files written from text.
#pragma once

#include <string>

#include "critdim/model.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::eval::test {

std::string data_dir();  // ../shared/data
std::string stories();   // ../shared/golden/models/stories260K-f32.gguf
const model::Model& stories_model();
const tokenizer::Tokenizer& stories_tokenizer();
// Writes text to a fresh file in a fresh folder and returns its path.
std::string write_file(const std::string& name, const std::string& text);

}  // namespace critdim::eval::test
