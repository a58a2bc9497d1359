// SentencePiece-style encoding as llama.cpp does it: start from UTF-8 characters, repeatedly
// merge the adjacent pair whose concatenation is the highest-scoring token (ties: leftmost),
// and spell whatever is not a token with byte-fallback tokens.
#include <queue>

#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace critdim::tokenizer {

namespace {

struct Symbol {
    int prev, next;
    const char* text;
    size_t n;
};

struct Bigram {
    int left, right;
    float score;
    size_t size;
};

struct BigramOrder {  // highest score first, then leftmost
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

class SpmSession {
public:
    explicit SpmSession(const Vocab& vocab) : vocab_(vocab) {}

    void encode(const std::string& text, std::vector<int32_t>& out) {
        // One symbol per character; the lead byte decides the length, as in llama.cpp.
        std::vector<int> starts{0};  // first symbol of each independent segment
        for (size_t offs = 0; offs < text.size();) {
            const size_t len = std::min(unicode::utf8_len(static_cast<uint8_t>(text[offs])), text.size() - offs);
            const int index = static_cast<int>(symbols_.size());
            const char* sym = text.data() + offs;
            offs += len;
            // Where no token can span a space boundary (vocab.spm_split_at_spaces), the text
            // before "▁" and from "▁" on never merge with each other: merging them apart gives
            // the same result as llama.cpp's one global queue, at a fraction of the cost.
            if (vocab_.spm_split_at_spaces && index > 0 && is_space_mark(sym, len) &&
                !is_space_mark(symbols_.back().text, symbols_.back().n)) {
                symbols_.back().next = -1;
                starts.push_back(index);
            }
            symbols_.push_back({starts.back() == index ? -1 : index - 1, offs == text.size() ? -1 : index + 1, sym, len});
        }
        if (symbols_.empty()) return;
        for (int start : starts) {
            for (int i = start; symbols_[i].next != -1; i = symbols_[i].next) try_add_bigram(i, symbols_[i].next);
            while (!queue_.empty()) {
                const Bigram bigram = queue_.top();
                queue_.pop();
                Symbol& left = symbols_[bigram.left];
                Symbol& right = symbols_[bigram.right];
                if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;  // stale
                left.n += right.n;
                right.n = 0;
                left.next = right.next;
                if (right.next >= 0) symbols_[right.next].prev = bigram.left;
                try_add_bigram(left.prev, bigram.left);
                try_add_bigram(bigram.left, left.next);
            }
            for (int i = start; i != -1; i = symbols_[i].next) resegment(symbols_[i], out);
        }
    }

private:
    static bool is_space_mark(const char* p, size_t n) { return n == 3 && std::string_view(p, 3) == "\xe2\x96\x81"; }

    void try_add_bigram(int left, int right) {
        if (left == -1 || right == -1) return;
        std::string_view text(symbols_[left].text, symbols_[left].n + symbols_[right].n);
        const int32_t id = vocab_.find(text);
        if (id < 0) return;
        queue_.push({left, right, vocab_.tokens[id].score, text.size()});
    }

    // A merged symbol is always a token (pairs are queued only when they are one). A symbol
    // that was never merged and is no token is spelled with byte tokens. (llama.cpp also
    // looks such a symbol up among the queued pairs' texts, which can never match: a pair's
    // first character has the same length as the lone symbol, so the pair is longer.)
    void resegment(const Symbol& symbol, std::vector<int32_t>& out) {
        std::string_view text(symbol.text, symbol.n);
        const int32_t id = vocab_.find(text);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
        for (char ch : text) out.push_back(vocab_.byte_to_token(static_cast<uint8_t>(ch)));
    }

    const Vocab& vocab_;
    std::vector<Symbol> symbols_;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
};

}  // namespace

void encode_spm(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
    // SentencePiece writes spaces as U+2581 "▁".
    std::string escaped;
    escaped.reserve(text.size() + text.size() / 4);
    for (char ch : text) {
        if (ch == ' ')
            escaped += "\xe2\x96\x81";
        else
            escaped += ch;
    }
    SpmSession(vocab).encode(escaped, out);
}

}  // namespace critdim::tokenizer
