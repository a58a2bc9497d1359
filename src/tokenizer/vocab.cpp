#include "tokenizer/vocab.hpp"

#include <algorithm>
#include <cctype>

#include "critdim/base.hpp"

namespace critdim::tokenizer {

namespace {

// GGUF token types (gguf-py's TokenType) -> attributes.
uint32_t attr_from_type(int64_t type) {
    switch (type) {
        case 0: return kAttrNormal;  // undefined
        case 1: return kAttrNormal;
        case 2: return kAttrUnknown;
        case 3: return kAttrControl;
        case 4: return kAttrUserDefined;
        case 5: return kAttrUnused;
        case 6: return kAttrByte;
        default: return 0;
    }
}

// Texts llama.cpp recognises as end-of-turn / end-of-generation / fill-in-the-middle markers.
constexpr std::string_view kEotTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                          "<|endoftext|>", "<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"};
constexpr std::string_view kEogTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                          "<|endoftext|>", "<|eom_id|>", "<EOT>"};
constexpr std::string_view kEomTexts[] = {"<|eom_id|>"};
constexpr std::string_view kFimPre[] = {"<|fim_prefix|>", "<fim-prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", "\xe2\x96\x81<PRE>"};
constexpr std::string_view kFimSuf[] = {"<|fim_suffix|>", "<fim-suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>", "\xe2\x96\x81<SUF>"};
constexpr std::string_view kFimMid[] = {"<|fim_middle|>", "<fim-middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", "\xe2\x96\x81<MID>"};
constexpr std::string_view kFimPad[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>"};
constexpr std::string_view kFimRep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"};
constexpr std::string_view kFimSep[] = {"<|file_sep|>", "<fim-file-sep>", "<FILE_SEP>"};

template <size_t N>
bool one_of(std::string_view s, const std::string_view (&list)[N]) {
    return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

}  // namespace

std::unique_ptr<Vocab> Vocab::load(const gguf::File& file) {
    auto v = std::make_unique<Vocab>();
    v->path = file.path();
    auto fail = [&](std::string_view key, const std::string& what) -> void {
        throw_input(file.path(), "key '" + std::string(key) + "': " + what);
    };

    v->model_name = file.get_string("tokenizer.ggml.model");
    v->pre_name = file.get_string("tokenizer.ggml.pre", "");
    const PreTokenizerSpec* pre_spec = nullptr;
    if (v->model_name == "llama") {
        v->type = VocabType::spm;
        v->bos = 1, v->eos = 2, v->unk = 0;
        v->add_space_prefix = true, v->clean_spaces = false, v->add_bos = true;
    } else if (v->model_name == "bert") {
        v->type = VocabType::wpm;
        v->bos = 101, v->unk = 100, v->sep = 102, v->pad = 0, v->mask = 103;
        v->clean_spaces = true, v->add_bos = true, v->add_sep = true;
    } else if (v->model_name == "gpt2") {
        v->type = VocabType::bpe;
        v->bos = 11, v->eos = 11;
        const std::string pre = v->pre_name.empty() ? "default" : v->pre_name;
        pre_spec = find_pre_tokenizer(pre);
        if (!pre_spec)
            fail("tokenizer.ggml.pre", "unknown pre-tokenizer '" + pre + "' (known: " + known_pre_tokenizers() + ")");
        v->clean_spaces = pre_spec->clean_spaces;
        v->ignore_merges = pre_spec->ignore_merges;
        v->add_bos = pre_spec->add_bos;
        if (pre == "chatglm-bpe") v->bos = -1;
    } else {
        fail("tokenizer.ggml.model", "unsupported tokenizer '" + v->model_name + "' (critdim reads llama, gpt2, bert)");
    }
    if (v->pre_name.empty()) v->pre_name = "default";
    v->add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix", v->add_space_prefix);

    // Tokens, scores, types.
    std::vector<std::string> texts = file.get_string_array("tokenizer.ggml.tokens");
    if (texts.empty()) fail("tokenizer.ggml.tokens", "the vocabulary is empty");
    const size_t n = texts.size();
    std::vector<float> scores;
    std::vector<int64_t> types;
    if (file.has("tokenizer.ggml.scores")) {
        scores = file.get_float_array("tokenizer.ggml.scores");
        if (scores.size() != n)
            fail("tokenizer.ggml.scores", std::to_string(scores.size()) + " scores for " + std::to_string(n) + " tokens");
    }
    if (file.has("tokenizer.ggml.token_type")) {
        types = file.get_int_array("tokenizer.ggml.token_type");
        if (types.size() != n)
            fail("tokenizer.ggml.token_type",
                 std::to_string(types.size()) + " types for " + std::to_string(n) + " tokens");
    }
    v->tokens.resize(n);
    v->token_to_id.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        TokenData& t = v->tokens[i];
        t.text = texts[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::move(texts[i]);
        t.score = scores.empty() ? 0.0f : scores[i];
        t.attr = types.empty() ? kAttrNormal : attr_from_type(types[i]);
        v->token_to_id[t.text] = static_cast<int32_t>(i);  // a duplicate text maps to its last id
        v->max_token_len = std::max(v->max_token_len, t.text.size());
    }

    if (v->type == VocabType::bpe) {
        constexpr std::string_view key = "tokenizer.ggml.merges";
        if (!file.has(key)) fail(key, "missing (a gpt2 vocabulary needs its merges)");
        const std::vector<std::string> merges = file.get_string_array(key);
        v->bpe_ranks_by_id.reserve(merges.size());
        for (size_t i = 0; i < merges.size(); ++i) {
            const std::string& m = merges[i];
            const size_t space = m.find(' ', 1);
            if (space == std::string::npos)
                fail(key, "merge " + std::to_string(i) + " '" + m + "' is not two parts separated by a space");
            const std::string_view left = std::string_view(m).substr(0, space), right = std::string_view(m).substr(space + 1);
            const int32_t l = v->find(left), r = v->find(right);
            if (l >= 0 && r >= 0)  // the usual case; the first of duplicate merges wins, as in llama.cpp
                v->bpe_ranks_by_id.emplace((static_cast<uint64_t>(l) << 32) | static_cast<uint32_t>(r),
                                           static_cast<int32_t>(i));
            else
                v->bpe_ranks.emplace(std::string(left) + '\xFF' + std::string(right), static_cast<int32_t>(i));
        }
        v->pre = std::make_unique<PreTokenizer>(*pre_spec);
    }

    // Special token ids: a key overrides the default; an id past the vocabulary is refused.
    const std::pair<std::string_view, int32_t*> special_keys[] = {
        {"tokenizer.ggml.bos_token_id", &v->bos},          {"tokenizer.ggml.eos_token_id", &v->eos},
        {"tokenizer.ggml.eot_token_id", &v->eot},          {"tokenizer.ggml.eom_token_id", &v->eom},
        {"tokenizer.ggml.unknown_token_id", &v->unk},      {"tokenizer.ggml.seperator_token_id", &v->sep},
        {"tokenizer.ggml.padding_token_id", &v->pad},      {"tokenizer.ggml.mask_token_id", &v->mask},
        {"tokenizer.ggml.fim_pre_token_id", &v->fim_pre},  {"tokenizer.ggml.fim_suf_token_id", &v->fim_suf},
        {"tokenizer.ggml.fim_mid_token_id", &v->fim_mid},  {"tokenizer.ggml.fim_pad_token_id", &v->fim_pad},
        {"tokenizer.ggml.fim_rep_token_id", &v->fim_rep},  {"tokenizer.ggml.fim_sep_token_id", &v->fim_sep},
    };
    for (const auto& [key, id] : special_keys) {
        if (!file.has(key)) continue;
        const int64_t value = file.get_int(key);
        if (value == -1 || value == 0xFFFFFFFF) continue;  // "none": keep the default
        if (value < 0 || value >= static_cast<int64_t>(n))
            fail(key, "token id " + std::to_string(value) + " is out of range (the vocabulary has " +
                          std::to_string(n) + " tokens)");
        *id = static_cast<int32_t>(value);
    }
    v->add_bos = file.get_bool("tokenizer.ggml.add_bos_token", v->add_bos);
    v->add_eos = file.get_bool("tokenizer.ggml.add_eos_token", v->add_eos);

    // Markers found by their text (llama.cpp does the same: the files do not always say).
    auto mark_control = [&](int32_t id) { v->tokens[id].attr = kAttrControl; };
    auto detect = [&](int32_t& slot, auto const& list) {
        if (slot != -1) return;
        for (int32_t id = 0; id < v->n_tokens(); ++id)
            if (one_of(v->tokens[id].text, list)) {
                slot = id;
                if (!(v->tokens[id].attr & kAttrControl)) mark_control(id);
                return;
            }
    };
    detect(v->eot, kEotTexts);
    detect(v->eom, kEomTexts);
    detect(v->fim_pre, kFimPre);
    detect(v->fim_suf, kFimSuf);
    detect(v->fim_mid, kFimMid);
    detect(v->fim_pad, kFimPad);
    detect(v->fim_rep, kFimRep);
    detect(v->fim_sep, kFimSep);
    for (int32_t id : {v->fim_pad, v->fim_rep, v->fim_sep})
        if (id != -1) v->eog.insert(id);
    for (int32_t id = 0; id < v->n_tokens(); ++id)
        if (one_of(v->tokens[id].text, kEogTexts)) {
            v->eog.insert(id);
            if (!(v->tokens[id].attr & kAttrControl)) mark_control(id);
        }
    for (int32_t id : {v->eos, v->eot, v->eom})
        if (id != -1) v->eog.insert(id);

    // Tokens that are matched inside text, longest first.
    for (int32_t id = 0; id < v->n_tokens(); ++id)
        if (v->tokens[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v->special_tokens.push_back(id);
    std::stable_sort(v->special_tokens.begin(), v->special_tokens.end(), [&](int32_t a, int32_t b) {
        return v->tokens[a].text.size() > v->tokens[b].text.size();
    });

    // Per-model attributes that the files do not carry (llama.cpp sets them by name).
    std::string general_name = file.get_string("general.name", "");
    std::transform(general_name.begin(), general_name.end(), general_name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto set_attr = [&](std::string_view text, uint32_t attr, bool on) {
        const int32_t id = v->find(text);
        if (id < 0) return;
        v->tokens[id].attr = on ? (v->tokens[id].attr | attr) : (v->tokens[id].attr & ~attr);
    };
    if (v->pre_name.find("jina-v2-") != std::string::npos) {
        set_attr("<mask>", kAttrLstrip, true);
    } else if (general_name.find("phi-3") != std::string::npos || general_name.find("phi3") != std::string::npos) {
        for (int32_t id : v->special_tokens) v->tokens[id].attr |= kAttrRstrip;
        set_attr("</s>", kAttrRstrip, true);
        for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(t, kAttrRstrip, false);
    }

    if (v->type == VocabType::spm) {
        v->spm_split_at_spaces = true;
        constexpr std::string_view mark = "\xe2\x96\x81";
        for (const TokenData& t : v->tokens) {
            for (size_t p = t.text.find(mark, 1); p != std::string::npos; p = t.text.find(mark, p + 1)) {
                if (p < 3 || t.text.compare(p - 3, 3, mark) != 0) {
                    v->spm_split_at_spaces = false;
                    break;
                }
            }
            if (!v->spm_split_at_spaces) break;
        }
    }

    v->chat_template = file.get_string("tokenizer.chat_template", "");
    return v;
}

int32_t Vocab::bpe_rank(std::string_view left, std::string_view right) const {
    std::string key;
    key.reserve(left.size() + right.size() + 1);
    key.append(left).push_back('\xFF');
    key.append(right);
    auto it = bpe_ranks.find(key);
    return it == bpe_ranks.end() ? -1 : it->second;
}

int32_t Vocab::byte_to_token(uint8_t byte) const {
    static constexpr char hex[] = "0123456789ABCDEF";
    const char name[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
    int32_t id = find(std::string_view(name, 6));
    if (id >= 0) return id;
    id = find(std::string_view(reinterpret_cast<const char*>(&byte), 1));
    if (id >= 0) return id;
    throw_input(path, "the vocabulary has no token for byte 0x" + std::string(name + 3, 2) +
                          " (neither <0x" + std::string(name + 3, 2) + "> nor the byte itself)");
}

uint8_t Vocab::token_to_byte(int32_t id) const {
    const std::string& t = tokens[id].text;
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>')
        return static_cast<uint8_t>(std::stoul(t.substr(3, 2), nullptr, 16));
    return static_cast<uint8_t>(t.empty() ? 0 : t[0]);
}

}  // namespace critdim::tokenizer
