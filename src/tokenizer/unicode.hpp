// Unicode helpers the tokenizers share: UTF-8 decoding that never fails (llama.cpp's rules),
// general-category flags, simple lower-casing, the first code point of a canonical
// decomposition, and GPT-2's byte <-> code point mapping. Categories come from libutf8proc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace critdim::tokenizer::unicode {

enum Flag : uint16_t {
    kUndefined = 0x0001,   // unassigned code point (Cn)
    kNumber = 0x0002,      // \p{N}
    kLetter = 0x0004,      // \p{L}
    kSeparator = 0x0008,   // \p{Z}
    kMark = 0x0010,        // \p{M}
    kPunctuation = 0x0020, // \p{P}
    kSymbol = 0x0040,      // \p{S}
    kControl = 0x0080,     // \p{C}
    kWhitespace = 0x0100,  // the White_Space property (\s)
};

// Category flags of a code point (values past U+10FFFF are undefined).
uint16_t flags(uint32_t cpt);
inline bool is_whitespace(uint32_t cpt) { return flags(cpt) & kWhitespace; }

uint32_t to_lower(uint32_t cpt);
// The first code point of the canonical decomposition (llama.cpp's "NFD" table, which keeps
// one code point per code point: "é" -> "e").
uint32_t nfd_first(uint32_t cpt);

// Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes).
inline size_t utf8_len(uint8_t lead) {
    static constexpr uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[lead >> 4];
}

// Code points of UTF-8 text; a byte that does not start a valid sequence becomes U+FFFD and
// decoding resumes at the next byte (as llama.cpp does).
std::vector<uint32_t> decode_utf8(std::string_view text);
void append_utf8(std::string& out, uint32_t cpt);
std::string to_utf8(uint32_t cpt);
// Bytes of complete characters at the start of s that can be emitted now: the length of the
// longest prefix that does not end inside a valid but unfinished UTF-8 sequence.
size_t complete_utf8_prefix(std::string_view s);

// GPT-2's reversible byte -> printable code point mapping, as UTF-8 ("Ġ" for ' ').
const std::string& byte_to_utf8(uint8_t byte);
// The byte a code point of that mapping stands for, or -1.
int utf8_cpt_to_byte(uint32_t cpt);

}  // namespace critdim::tokenizer::unicode
