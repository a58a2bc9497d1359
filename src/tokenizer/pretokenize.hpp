// Byte-level BPE pre-tokenizers: the table that maps tokenizer.ggml.pre to split rules, and
// the splitter that applies them. As in llama.cpp, each rule is a regex applied in turn to the
// pieces the previous rules left, keeping both the matches and the text between them.
// Two rules (GPT-2's and Llama 3's) have hand-written splitters, as llama.cpp has; the others
// run on PCRE2 over "collapsed" text in which every non-ASCII code point is replaced by a
// marker of its category (\p{L}, \p{N}, \p{P}, whitespace, other), exactly llama.cpp's scheme,
// so both give identical pieces.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace critdim::tokenizer {

struct PreTokenizerSpec {
    std::vector<std::string_view> names;  // tokenizer.ggml.pre values that select it
    std::vector<std::string_view> rules;  // regexes, applied in order
    bool clean_spaces = true;             // detokenize removes " ," " 's" ... (llama.cpp)
    bool ignore_merges = false;           // a word that is a token is not merged
    bool add_bos = false;                 // default for tokenizer.ggml.add_bos_token
};

// nullptr when the name is unknown.
const PreTokenizerSpec* find_pre_tokenizer(std::string_view pre_name);
// Every name the table knows, for error messages.
std::string known_pre_tokenizers();

class PreTokenizer {
public:
    explicit PreTokenizer(const PreTokenizerSpec& spec);
    ~PreTokenizer();
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;

    // The words of text, each mapped byte by byte through GPT-2's byte -> code point table.
    // Invalid UTF-8 bytes become U+FFFD first (llama.cpp).
    std::vector<std::string> split(std::string_view text) const;

private:
    struct Rule;
    std::vector<std::unique_ptr<Rule>> rules_;
};

}  // namespace critdim::tokenizer
