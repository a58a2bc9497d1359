// WordPiece as llama.cpp does it for BERT-style vocabularies: lower-case, keep the first code
// point of each canonical decomposition (accents fall away), split on whitespace and around
// punctuation and CJK characters, then cover each word greedily with the longest tokens;
// the GGUF marks word starts with "▁" instead of marking continuations with "##".
#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace critdim::tokenizer {

namespace {

bool is_chinese_char(uint32_t c) {
    return (c >= 0x04E00 && c <= 0x09FFF) || (c >= 0x03400 && c <= 0x04DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0x0F900 && c <= 0x0FAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::vector<std::string> split_words(std::string_view text) {
    std::vector<std::string> words(1);
    for (uint32_t cpt : unicode::decode_utf8(text)) {
        cpt = unicode::nfd_first(cpt);
        const uint16_t f = unicode::flags(cpt);
        if (f & unicode::kWhitespace) {
            if (!words.back().empty()) words.emplace_back();
            continue;
        }
        if (cpt == 0 || cpt == 0xFFFD || (f & unicode::kControl)) continue;
        const std::string s = unicode::to_utf8(unicode::to_lower(cpt));
        if ((f & unicode::kPunctuation) || (cpt < 0x7F && (f & unicode::kSymbol)) || is_chinese_char(cpt)) {
            if (!words.back().empty()) words.emplace_back();
            words.back() = s;  // a word of its own
            words.emplace_back();
        } else {
            words.back() += s;
        }
    }
    if (words.back().empty()) words.pop_back();
    return words;
}

}  // namespace

void encode_wpm(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
    for (const std::string& word : split_words(text)) {
        if (word.empty()) continue;
        const std::string marked = "\xe2\x96\x81" + word;
        const size_t n = marked.size();
        const size_t before = out.size();
        for (size_t i = 0; i < n; ++i) {
            bool matched = false;
            for (size_t j = std::min(n, i + vocab.max_token_len + 1); j > i; --j) {
                const int32_t id = vocab.find(std::string_view(marked).substr(i, j - i));
                if (id >= 0) {
                    out.push_back(id);
                    matched = true;
                    i = j - 1;
                    break;
                }
            }
            if (!matched) {  // the word cannot be covered: it becomes one unknown token
                out.resize(before);
                break;
            }
        }
        if (out.size() == before) out.push_back(vocab.unk);
    }
}

}  // namespace critdim::tokenizer
