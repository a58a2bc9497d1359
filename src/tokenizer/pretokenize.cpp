#include "tokenizer/pretokenize.hpp"

#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>

#include <stdexcept>

#include "critdim/base.hpp"
#include "tokenizer/unicode.hpp"

namespace critdim::tokenizer {

namespace {

// The split rules are the regexes of the models' tokenizer.json files, as llama.cpp states them.
constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCjk = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+";
constexpr std::string_view kDeepseekLlmLetters =
    "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373"
    "\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f"
    "\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77"
    "\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d"
    "\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4"
    "\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
    "\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d"
    "\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a"
    "\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2"
    "\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943]+";

const std::vector<PreTokenizerSpec>& table() {
    // name(s), rules, clean_spaces, ignore_merges, add_bos
    static const std::vector<PreTokenizerSpec> specs = {
        {{"default"},
         {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, true, false, false},
        {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, {kLlama3}, true, true, true},
        {{"dbrx", "smaug-bpe"}, {kLlama3}, true, false, false},
        {{"deepseek-llm"},
         {"[\r\n]", kDeepseekLlmLetters, "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
          R"(\s+$)", kCjk, R"(\p{N}+)"},
         false, false, false},
        {{"deepseek-coder"}, {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjk, R"(\p{N})"}, false, false, false},
        {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, true, false, false},
        {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b"}, {R"(\p{N})", kGpt2}, true, false, false},
        {{"command-r", "smollm"}, {R"(\p{N})", kGpt2}, false, false, false},
        {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
          "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"},
         {kGpt2}, true, false, false},
        {{"qwen2", "deepseek-r1-qwen", "megrez"}, {kQwen2}, false, false, false},
        {{"stablelm2"}, {kQwen2}, true, false, false},
        {{"poro-chat"}, {R"( ?[^(\s|.,!?…。，、।۔،)]+)"}, false, false, false},
        {{"bloom", "gpt3-finnish"}, {R"( ?[^(\s|.,!?…。，、।۔،)]+)"}, true, false, false},
        {{"viking"}, {R"( ?[^(\s|.,!?…。，、।۔،)]+)", R"(\p{N})"}, false, false, false},
        {{"chatglm-bpe"}, {kLlama3}, true, false, false},
    };
    return specs;
}

using Offsets = std::vector<size_t>;  // lengths in code points of consecutive pieces

// --- llama.cpp's hand-written splitters for the GPT-2 and Llama 3 rules -------------------

struct Cursor {
    const std::vector<uint32_t>& cpts;
    size_t begin, end;
    static constexpr uint32_t kOut = 0xFFFFFFFF;
    uint32_t cpt(size_t pos) const { return pos >= begin && pos < end ? cpts[pos] : kOut; }
    uint16_t flags(size_t pos) const { return pos >= begin && pos < end ? unicode::flags(cpts[pos]) : 0; }
};

constexpr uint16_t kL = unicode::kLetter, kN = unicode::kNumber, kWS = unicode::kWhitespace;

void split_gpt2(const std::vector<uint32_t>& cpts, size_t begin, size_t end, Offsets& out) {
    const Cursor c{cpts, begin, end};
    size_t prev = begin;
    auto emit = [&](size_t stop) {
        const size_t len = stop - prev;
        if (len) out.push_back(len);
        prev = stop;
        return len;
    };
    for (size_t pos = begin; pos < end;) {
        const uint32_t cp = c.cpt(pos);
        const uint16_t f = c.flags(pos);
        if (cp == '\'' && pos + 1 < end) {  // 's 't 're 've 'm 'll 'd
            const uint32_t n1 = c.cpt(pos + 1);
            if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                pos += emit(pos + 2);
                continue;
            }
            if (pos + 2 < end) {
                const uint32_t n2 = c.cpt(pos + 2);
                if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                    pos += emit(pos + 3);
                    continue;
                }
            }
        }
        uint16_t f2 = cp == ' ' ? c.flags(pos + 1) : f;
        if (f2 & kL) {  // ' ?\p{L}+'
            pos += cp == ' ';
            while (f2 & kL) f2 = c.flags(++pos);
            emit(pos);
            continue;
        }
        if (f2 & kN) {  // ' ?\p{N}+'
            pos += cp == ' ';
            while (f2 & kN) f2 = c.flags(++pos);
            emit(pos);
            continue;
        }
        if (!(f2 & (kWS | kL | kN)) && f2) {  // ' ?[^\s\p{L}\p{N}]+'
            pos += cp == ' ';
            while (!(f2 & (kWS | kL | kN)) && f2) f2 = c.flags(++pos);
            emit(pos);
            continue;
        }
        size_t n_ws = 0;
        while (c.flags(pos + n_ws) & kWS) ++n_ws;
        if (n_ws > 1 && c.cpt(pos + n_ws) != Cursor::kOut) {  // '\s+(?!\S)'
            pos += n_ws - 1;
            emit(pos);
            continue;
        }
        if (n_ws > 0) {  // '\s+'
            pos += n_ws;
            emit(pos);
            continue;
        }
        emit(++pos);  // no rule matches: one code point
    }
}

void split_llama3(const std::vector<uint32_t>& cpts, size_t begin, size_t end, Offsets& out) {
    const Cursor c{cpts, begin, end};
    size_t prev = begin;
    auto emit = [&](size_t stop) {
        const size_t len = stop - prev;
        if (len) out.push_back(len);
        prev = stop;
        return len;
    };
    for (size_t pos = begin; pos < end;) {
        const uint32_t cp = c.cpt(pos);
        const uint16_t f = c.flags(pos);
        if (cp == '\'' && pos + 1 < end) {  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            const uint32_t n1 = unicode::to_lower(c.cpt(pos + 1));
            if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                pos += emit(pos + 2);
                continue;
            }
            if (pos + 2 < end) {
                const uint32_t n2 = unicode::to_lower(c.cpt(pos + 2));
                if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                    pos += emit(pos + 3);
                    continue;
                }
            }
        }
        if (!(cp == '\r' || cp == '\n' || (f & kN))) {  // [^\r\n\p{L}\p{N}]?\p{L}+
            if ((f & kL) || (c.flags(pos + 1) & kL)) {
                ++pos;
                while (c.flags(pos) & kL) ++pos;
                emit(pos);
                continue;
            }
        }
        if (f & kN) {  // \p{N}{1,3}
            size_t ini = pos;
            while (c.flags(pos) & kN) {
                if (++pos - ini >= 3) {
                    emit(pos);
                    ini = pos;
                }
            }
            emit(pos);
            continue;
        }
        uint16_t f2 = cp == ' ' ? c.flags(pos + 1) : f;  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        if (!(f2 & (kWS | kL | kN)) && f) {
            pos += cp == ' ';
            while (!(f2 & (kWS | kL | kN)) && f2) f2 = c.flags(++pos);
            uint32_t cp2 = c.cpt(pos);
            while (cp2 == '\r' || cp2 == '\n') cp2 = c.cpt(++pos);
            emit(pos);
            continue;
        }
        size_t n_ws = 0, last_newline_end = 0;
        while (c.flags(pos + n_ws) & kWS) {
            const uint32_t cp2 = c.cpt(pos + n_ws);
            if (cp2 == '\r' || cp2 == '\n') last_newline_end = pos + n_ws + 1;
            ++n_ws;
        }
        if (last_newline_end > 0) {  // \s*[\r\n]+
            pos = last_newline_end;
            emit(pos);
            continue;
        }
        if (n_ws > 1 && c.cpt(pos + n_ws) != Cursor::kOut) {  // \s+(?!\S)
            pos += n_ws - 1;
            emit(pos);
            continue;
        }
        if (n_ws > 0) {  // \s+
            pos += n_ws;
            emit(pos);
            continue;
        }
        emit(++pos);
    }
}

// --- the general case: PCRE2 over collapsed or whitespace-normalised code points ----------

// Non-ASCII code points become one marker per category, so that ASCII-only regex classes can
// stand for \p{N}, \p{L}, \p{P} (llama.cpp's scheme, which these rules are checked against).
constexpr uint32_t kMarkOther = 0xD0, kMarkNumber = 0xD1, kMarkLetter = 0xD2, kMarkPunct = 0xD3;

uint32_t collapse(uint32_t cpt) {
    if (cpt < 128) return cpt;
    const uint16_t f = unicode::flags(cpt);
    if (f & kWS) return 0x0B;
    switch (f & 0xFF) {
        case unicode::kNumber: return kMarkNumber;
        case unicode::kLetter: return kMarkLetter;
        case unicode::kPunctuation: return kMarkPunct;
        default: return kMarkOther;
    }
}

bool uses_categories(std::string_view rule) {
    return rule.find("\\p{N}") != std::string_view::npos || rule.find("\\p{L}") != std::string_view::npos ||
           rule.find("\\p{P}") != std::string_view::npos;
}

// Rewrites \p{N} \p{L} \p{P} into classes of the collapsed alphabet.
std::u32string collapse_rule(std::string_view rule) {
    auto category_class = [](char cat) -> std::u32string {
        switch (cat) {
            case 'N': return U"\xD1\x30-\x39";
            case 'L': return U"\xD2\x41-\x5A\x61-\x7A";
            default: return U"\xD3\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\\\x5B-\\\x5D\x5F\\\x7B\\\x7D";
        }
    };
    std::u32string out;
    bool inside = false;
    for (size_t i = 0; i < rule.size(); ++i) {
        const char ch = rule[i];
        if (ch == '[' && (i == 0 || rule[i - 1] != '\\')) {
            inside = true;
            out += U'[';
            continue;
        }
        if (inside && ch == ']' && rule[i - 1] != '\\') {
            inside = false;
            out += U']';
            continue;
        }
        if (ch == '\\' && i + 4 < rule.size() && rule[i + 1] == 'p' && rule[i + 2] == '{' && rule[i + 4] == '}' &&
            (rule[i + 3] == 'N' || rule[i + 3] == 'L' || rule[i + 3] == 'P')) {
            if (!inside) out += U'[';
            out += category_class(rule[i + 3]);
            if (!inside) out += U']';
            i += 4;
            continue;
        }
        out += static_cast<char32_t>(static_cast<unsigned char>(ch));
    }
    return out;
}

}  // namespace

struct PreTokenizer::Rule {
    enum class Kind { gpt2, llama3, regex } kind = Kind::regex;
    bool collapsed = false;
    pcre2_code* code = nullptr;

    explicit Rule(std::string_view rule) {
        if (rule == kGpt2) {
            kind = Kind::gpt2;
            return;
        }
        if (rule == kLlama3) {
            kind = Kind::llama3;
            return;
        }
        collapsed = uses_categories(rule);
        std::u32string pattern;
        if (collapsed) {
            pattern = collapse_rule(rule);
        } else {
            for (uint32_t c : unicode::decode_utf8(rule)) pattern += static_cast<char32_t>(c);
        }
        int err = 0;
        PCRE2_SIZE err_offset = 0;
        // No UTF mode: each code unit is one code point (or collapsed marker), and the
        // classes stay ASCII, as with std::regex. $ only at the end, as ECMAScript.
        code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_DOLLAR_ENDONLY,
                             &err, &err_offset, nullptr);
        if (!code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, 256);
            std::string m;
            for (PCRE2_UCHAR* p = msg; *p; ++p) m += static_cast<char>(*p);
            throw Error(ErrorKind::internal, "pre-tokenizer rule", m);
        }
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
    }
    ~Rule() {
        if (code) pcre2_code_free(code);
    }

    // Splits every piece of `in` (lengths over subject) into matches and the gaps between them.
    void split(const std::vector<uint32_t>& cpts, const std::vector<uint32_t>& subject, const Offsets& in,
               Offsets& out) const {
        size_t start = 0;
        if (kind != Kind::regex) {
            for (size_t len : in) {
                (kind == Kind::gpt2 ? split_gpt2 : split_llama3)(cpts, start, start + len, out);
                start += len;
            }
            return;
        }
        pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
        for (size_t len : in) {
            const auto* piece = reinterpret_cast<PCRE2_SPTR>(subject.data() + start);
            size_t pos = 0, prev_end = 0;
            uint32_t opts = 0;
            while (pos <= len) {
                const int rc = pcre2_match(code, piece, len, pos, opts, md, nullptr);
                if (rc < 0) {
                    if (opts == 0) break;  // no further match
                    opts = 0;              // an empty match was refused here: move on one
                    ++pos;
                    continue;
                }
                const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
                const size_t m_begin = ov[0], m_end = ov[1];
                if (m_begin > prev_end) out.push_back(m_begin - prev_end);
                if (m_end > m_begin) out.push_back(m_end - m_begin);
                prev_end = m_end;
                opts = m_end == m_begin ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
                pos = m_end;
                if (pos >= len && opts == 0) break;
            }
            if (prev_end < len) out.push_back(len - prev_end);
            start += len;
        }
        pcre2_match_data_free(md);
    }
};

PreTokenizer::PreTokenizer(const PreTokenizerSpec& spec) {
    for (std::string_view r : spec.rules) rules_.push_back(std::make_unique<Rule>(r));
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
    const std::vector<uint32_t> cpts = unicode::decode_utf8(text);
    std::vector<uint32_t> collapsed, spaced;
    Offsets offsets{cpts.size()}, next;
    for (const auto& rule : rules_) {
        const std::vector<uint32_t>* subject = &cpts;
        if (rule->kind == Rule::Kind::regex) {
            if (rule->collapsed) {
                if (collapsed.empty() && !cpts.empty()) {
                    collapsed.resize(cpts.size());
                    for (size_t i = 0; i < cpts.size(); ++i) collapsed[i] = collapse(cpts[i]);
                }
                subject = &collapsed;
            } else {
                if (spaced.empty() && !cpts.empty()) {
                    spaced = cpts;
                    for (uint32_t& c : spaced)
                        if (c > 0x7F && unicode::is_whitespace(c)) c = 0x0B;
                }
                subject = &spaced;
            }
        }
        next.clear();
        rule->split(cpts, *subject, offsets, next);
        offsets.swap(next);
    }
    std::vector<std::string> words;
    words.reserve(offsets.size());
    size_t start = 0;
    std::string utf8;
    for (size_t len : offsets) {
        utf8.clear();
        for (size_t i = start; i < start + len; ++i) unicode::append_utf8(utf8, cpts[i]);
        std::string word;
        word.reserve(utf8.size() * 2);
        for (char ch : utf8) word += unicode::byte_to_utf8(static_cast<uint8_t>(ch));
        words.push_back(std::move(word));
        start += len;
    }
    return words;
}

const PreTokenizerSpec* find_pre_tokenizer(std::string_view pre_name) {
    for (const auto& spec : table())
        for (std::string_view n : spec.names)
            if (n == pre_name) return &spec;
    return nullptr;
}

std::string known_pre_tokenizers() {
    std::string s;
    for (const auto& spec : table())
        for (std::string_view n : spec.names) s += (s.empty() ? "" : ", ") + std::string(n);
    return s;
}

}  // namespace critdim::tokenizer
