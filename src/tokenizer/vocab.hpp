// The vocabulary as read from GGUF metadata, with llama.cpp's defaults and fix-ups applied,
// and the three encoders (sessions) that turn raw text fragments into ids.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "critdim/gguf.hpp"
#include "tokenizer/pretokenize.hpp"

namespace critdim::tokenizer {

enum class VocabType { spm, bpe, wpm };

// Token attributes (llama.cpp's llama_token_attr bits).
enum TokenAttr : uint32_t {
    kAttrUnknown = 1u << 0,
    kAttrUnused = 1u << 1,
    kAttrNormal = 1u << 2,
    kAttrControl = 1u << 3,
    kAttrUserDefined = 1u << 4,
    kAttrByte = 1u << 5,
    kAttrLstrip = 1u << 7,
    kAttrRstrip = 1u << 8,
};

struct TokenData {
    std::string text;
    float score = 0.0f;
    uint32_t attr = kAttrNormal;
};

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Vocab {
    std::string path;
    VocabType type = VocabType::spm;
    std::string model_name, pre_name;
    std::vector<TokenData> tokens;
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id;
    // BPE merges -> rank: keyed by the two parts' token ids where both parts are tokens (the
    // usual case, looked up without building a string), else by "left\xFFright" (0xFF never
    // occurs in UTF-8, so keys are unambiguous).
    std::unordered_map<uint64_t, int32_t> bpe_ranks_by_id;
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> bpe_ranks;
    std::unique_ptr<PreTokenizer> pre;

    int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
    int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    bool add_bos = false, add_eos = false, add_sep = false;
    bool add_space_prefix = false, clean_spaces = false, ignore_merges = false;
    // SentencePiece: no token has "▁" after another character, so text can be encoded in
    // independent pieces that start at a "▁" (see spm.cpp).
    bool spm_split_at_spaces = false;
    std::set<int32_t> eog;
    std::vector<int32_t> special_tokens;  // matched in text, longest first
    size_t max_token_len = 0;
    std::string chat_template;

    static std::unique_ptr<Vocab> load(const gguf::File& file);

    int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
    bool valid(int32_t id) const { return id >= 0 && id < n_tokens(); }
    int32_t find(std::string_view text) const {
        auto it = token_to_id.find(text);
        return it == token_to_id.end() ? -1 : it->second;
    }
    int32_t bpe_rank(std::string_view left, std::string_view right) const;
    int32_t bpe_rank(int32_t left_id, int32_t right_id) const {
        auto it = bpe_ranks_by_id.find((static_cast<uint64_t>(left_id) << 32) | static_cast<uint32_t>(right_id));
        return it == bpe_ranks_by_id.end() ? -1 : it->second;
    }
    // SentencePiece byte fallback: "<0xNN>", else the byte itself as a token; throws when
    // the vocabulary has neither.
    int32_t byte_to_token(uint8_t byte) const;
    uint8_t token_to_byte(int32_t id) const;
};

// Each appends the ids of one raw-text fragment (no special tokens inside) to out.
void encode_spm(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);
void encode_bpe(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);
void encode_wpm(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

}  // namespace critdim::tokenizer
