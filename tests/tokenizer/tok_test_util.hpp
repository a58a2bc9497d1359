// Helpers for the tokenizer tests: loading vocabularies and llama.cpp's .inp/.out cases.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "critdim/gguf.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::test {

struct VocabCase {
    std::string text;
    std::vector<int32_t> ids;
};

// The cases of `<vocab>.inp` / `.out` (format: ../shared/vocab/README.md), deduplicated by
// text as llama.cpp's test does.
std::vector<VocabCase> read_vocab_cases(const std::string& inp_path, const std::string& out_path);

// Loaded once per test run and path (loading a 128k-token vocabulary takes a while).
std::shared_ptr<const tokenizer::Tokenizer> load_tokenizer(const std::string& gguf_path);

// The folder where ggml-vocab-more.tar.xz was unpacked (once per test run).
const std::string& more_vocab_dir();

std::string ids_to_string(const std::vector<int32_t>& ids);
// A printable rendering of a test string (escapes control characters).
std::string escape_text(const std::string& s);

}  // namespace critdim::test
