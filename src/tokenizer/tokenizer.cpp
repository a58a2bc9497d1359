// The public Tokenizer: special-token partitioning, dispatch to the vocabulary's encoder,
// pieces, and detokenization (llama.cpp's llama_vocab::tokenize / token_to_piece / detokenize).
#include "critdim/tokenizer.hpp"

#include <cctype>
#include <cstdio>

#include "critdim/base.hpp"
#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace critdim::tokenizer {

namespace {

// A span of the input that is either raw text or one special token.
struct Fragment {
    int32_t token;  // -1 for raw text
    size_t offset, length;
};

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Splits raw fragments at every occurrence of each special token, longest tokens first.
// Control (and unknown) tokens take part only when parse_special; user-defined ones always.
std::vector<Fragment> partition(const Vocab& vocab, std::string_view text, bool parse_special) {
    std::vector<Fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});
    std::vector<Fragment> next;
    for (const int32_t id : vocab.special_tokens) {
        const TokenData& tok = vocab.tokens[id];
        if (!parse_special && (tok.attr & (kAttrControl | kAttrUnknown))) continue;
        const std::string_view needle = tok.text;
        bool changed = false;
        next.clear();
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t begin = f.offset, length = f.length;
            while (true) {
                const size_t match = text.substr(begin, length).find(needle);
                if (match == std::string_view::npos) {
                    if (length > 0) next.push_back({-1, begin, length});
                    break;
                }
                changed = true;
                size_t left_len = match;
                if (tok.attr & kAttrLstrip)
                    while (left_len > 0 && is_space(text[begin + left_len - 1])) --left_len;
                if (left_len > 0) next.push_back({-1, begin, left_len});
                next.push_back({id, 0, 0});
                size_t right_begin = begin + match + needle.size();
                size_t right_len = begin + length - right_begin;
                if (tok.attr & kAttrRstrip)
                    while (right_len > 0 && is_space(text[right_begin])) ++right_begin, --right_len;
                begin = right_begin;
                length = right_len;
            }
        }
        if (changed) frags.swap(next);
    }
    return frags;
}

// llama.cpp's cleanup of spaces before punctuation and contractions (detokenize).
std::string clean_up_spaces(const std::string& in) {
    auto pass = [](const std::string& s, auto&& step) {
        std::string out;
        out.reserve(s.size());
        for (size_t i = 0; i < s.size(); ++i) step(s, i, out);
        return out;
    };
    // " ?" " !" " ." " ," lose the space.
    std::string t = pass(in, [](const std::string& s, size_t i, std::string& out) {
        const char x = s[i];
        if (i > 0 && s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) out.pop_back();
        out += x;
    });
    // " ' " becomes "'".
    std::string u;
    for (size_t i = 0; i < t.size(); ++i) {
        const char x = t[i];
        if (i > 0 && x == '\'' && i + 1 < t.size() && t[i - 1] == ' ' && t[i + 1] == ' ') {
            u.pop_back();
            u += x;
            ++i;  // drop the next space
            continue;
        }
        u += x;
    }
    // " 's" " 'm" " 're" " 've" lose the space.
    return pass(u, [](const std::string& s, size_t i, std::string& out) {
        const char x = s[i];
        if (i > 0 && s[i - 1] == ' ' && x == '\'' && i + 1 < s.size()) {
            const char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm')
                out.pop_back();
            else if (i + 2 < s.size() && ((x1 == 'r' && s[i + 2] == 'e') || (x1 == 'v' && s[i + 2] == 'e')))
                out.pop_back();
        }
        out += x;
    });
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Vocab> vocab) : vocab_(std::move(vocab)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
    return std::unique_ptr<Tokenizer>(new Tokenizer(Vocab::load(file)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
    const Vocab& v = *vocab_;
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    const std::vector<Fragment> frags = partition(v, text, parse_special);
    const bool add_special = add_bos;
    switch (v.type) {
        case VocabType::spm: {
            bool prev_special = true;  // the first text fragment gets the space prefix
            if (add_special && v.add_bos && v.bos >= 0) out.push_back(v.bos);
            for (const Fragment& f : frags) {
                if (f.token >= 0) {
                    out.push_back(f.token);
                    prev_special = true;
                    continue;
                }
                std::string piece;
                if (v.add_space_prefix && prev_special) piece = " ";
                piece += text.substr(f.offset, f.length);
                encode_spm(v, piece, out);
                prev_special = false;
            }
            if (add_special && v.add_eos && v.eos >= 0) out.push_back(v.eos);
            break;
        }
        case VocabType::bpe:
        case VocabType::wpm: {
            if (add_special && v.add_bos && v.bos >= 0) out.push_back(v.bos);
            for (const Fragment& f : frags) {
                if (f.token >= 0)
                    out.push_back(f.token);
                else if (v.type == VocabType::bpe)
                    encode_bpe(v, text.substr(f.offset, f.length), out);
                else
                    encode_wpm(v, text.substr(f.offset, f.length), out);
            }
            if (add_special && v.type == VocabType::wpm && v.add_sep && v.sep >= 0) out.push_back(v.sep);
            if (add_special && v.add_eos && v.eos >= 0) out.push_back(v.eos);
            break;
        }
    }
    return out;
}

bool Tokenizer::adds_bos() const { return vocab_->add_bos && vocab_->bos >= 0; }
bool Tokenizer::adds_eos() const { return vocab_->add_eos && vocab_->eos >= 0; }
int32_t Tokenizer::bos_id() const { return vocab_->bos; }
int32_t Tokenizer::eos_id() const { return vocab_->eos; }
int32_t Tokenizer::eot_id() const { return vocab_->eot; }
int32_t Tokenizer::n_vocab() const { return vocab_->n_tokens(); }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && vocab_->eog.count(id) > 0; }
bool Tokenizer::is_control(int32_t id) const {
    return vocab_->valid(id) && (vocab_->tokens[id].attr & (kAttrControl | kAttrUnknown));
}
const std::string& Tokenizer::model_name() const { return vocab_->model_name; }
const std::string& Tokenizer::pre_name() const { return vocab_->pre_name; }
const std::string& Tokenizer::chat_template() const { return vocab_->chat_template; }
int32_t Tokenizer::find_token(std::string_view text) const { return vocab_->find(text); }

const std::string& Tokenizer::token_text(int32_t id) const {
    if (!vocab_->valid(id))
        throw Error(ErrorKind::input, vocab_->path,
                    "token id " + std::to_string(id) + " is out of range (the vocabulary has " +
                        std::to_string(vocab_->n_tokens()) + " tokens)");
    return vocab_->tokens[id].text;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
    token_text(id);  // refuses ids out of range
    const TokenData& t = vocab_->tokens[static_cast<size_t>(id)];
    if (!render_special && (t.attr & (kAttrControl | kAttrUnknown))) return {};
    if (t.attr & (kAttrControl | kAttrUnknown | kAttrUserDefined)) return t.text;
    switch (vocab_->type) {
        case VocabType::spm:
        case VocabType::wpm: {
            if (t.attr & kAttrNormal) {
                std::string s;
                s.reserve(t.text.size());
                for (size_t i = 0; i < t.text.size(); ++i) {
                    if (t.text.compare(i, 3, "\xe2\x96\x81") == 0) {
                        s += ' ';
                        i += 2;
                    } else {
                        s += t.text[i];
                    }
                }
                return s;
            }
            if (t.attr & kAttrByte) return std::string(1, static_cast<char>(vocab_->token_to_byte(id)));
            return {};
        }
        case VocabType::bpe: {
            if (!(t.attr & kAttrNormal)) return {};
            std::string s;
            for (uint32_t cpt : unicode::decode_utf8(t.text)) {
                const int b = unicode::utf8_cpt_to_byte(cpt);
                if (b >= 0) {
                    s += static_cast<char>(b);
                } else {  // not a byte of the mapping: llama.cpp writes a marker
                    char buf[16];
                    s += "[UNK_BYTE_0x";
                    for (char c : unicode::to_utf8(cpt)) {
                        std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(static_cast<uint8_t>(c)));
                        s += buf;
                    }
                    s += t.text + "]";
                }
            }
            return s;
        }
    }
    return {};
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
    std::string out;
    bool strip_space = vocab_->add_space_prefix;
    for (int32_t id : ids) {
        std::string piece = token_to_piece(id, false);
        if (piece.empty()) continue;
        if (strip_space && piece[0] == ' ') piece.erase(0, 1);
        strip_space = false;
        out += piece;
    }
    return out;
}

std::string Tokenizer::detokenize(std::span<const int32_t> ids, bool remove_special, bool unparse_special) const {
    const Vocab& v = *vocab_;
    bool remove_space = v.add_space_prefix;
    if (remove_special && v.add_bos && !ids.empty() && ids.front() == v.bos) {
        remove_space = false;
        ids = ids.subspan(1);
    }
    if (remove_special && v.add_eos && !ids.empty() && ids.back() == v.eos) ids = ids.first(ids.size() - 1);
    std::string out;
    for (int32_t id : ids) {
        std::string piece = token_to_piece(id, unparse_special);
        if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        remove_space = false;
        out += piece;
    }
    return v.clean_spaces ? clean_up_spaces(out) : out;
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool render_special) : tok_(tok), render_special_(render_special) {}

std::string StreamDecoder::push(int32_t id) {
    pending_ += tok_.token_to_piece(id, render_special_);
    return take_complete();
}

std::string StreamDecoder::take_complete() {
    const size_t n = unicode::complete_utf8_prefix(pending_);
    std::string out = pending_.substr(0, n);
    pending_.erase(0, n);
    return out;
}

std::string StreamDecoder::flush() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace critdim::tokenizer
