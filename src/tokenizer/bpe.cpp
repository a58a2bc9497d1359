// Byte-level BPE as llama.cpp does it: pre-tokenize into words (pretokenize.cpp), then within
// each word merge the adjacent pair with the lowest merge rank (ties: leftmost) until none
// applies; a final piece that is not a token is spelled byte by byte where possible.
#include <queue>
#include <unordered_map>

#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace critdim::tokenizer {

namespace {

struct Symbol {
    int prev, next;
    const char* text;
    size_t n;
    int32_t id;  // the token the text is, or -1
};

struct Bigram {
    int left, right;
    int32_t rank;
    size_t size;
};

struct BigramOrder {  // lowest rank first, then leftmost
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

class BpeSession {
public:
    explicit BpeSession(const Vocab& vocab) : vocab_(vocab) {}

    void encode_word(const std::string& word, std::vector<int32_t>& out) {
        if (vocab_.ignore_merges) {
            const int32_t id = vocab_.find(word);
            if (id >= 0) {
                out.push_back(id);
                return;
            }
        }
        symbols_.clear();
        queue_ = {};
        for (size_t offs = 0; offs < word.size();) {
            const size_t len = std::min(unicode::utf8_len(static_cast<uint8_t>(word[offs])), word.size() - offs);
            const int index = static_cast<int>(symbols_.size());
            offs += len;
            symbols_.push_back({index - 1, offs == word.size() ? -1 : index + 1, word.data() + offs - len, len,
                                vocab_.find(std::string_view(word.data() + offs - len, len))});
        }
        for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) add_bigram(i - 1, i);

        while (!queue_.empty()) {
            const Bigram bigram = queue_.top();
            queue_.pop();
            Symbol& left = symbols_[bigram.left];
            Symbol& right = symbols_[bigram.right];
            // Stale when either side has changed since the pair was queued.
            if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size || left.next != bigram.right) continue;
            left.n += right.n;
            left.id = vocab_.find(std::string_view(left.text, left.n));
            right.n = 0;
            left.next = right.next;
            if (right.next >= 0) symbols_[right.next].prev = bigram.left;
            add_bigram(left.prev, bigram.left);
            add_bigram(bigram.left, left.next);
        }
        for (const Symbol& s : symbols_) {
            if (s.n == 0) continue;
            std::string_view piece(s.text, s.n);
            if (s.id >= 0) {
                out.push_back(s.id);
                continue;
            }
            for (char ch : piece) {  // llama.cpp: single-byte tokens where they exist, else nothing
                const int32_t b = vocab_.find(std::string_view(&ch, 1));
                if (b >= 0) out.push_back(b);
            }
        }
    }

private:
    void add_bigram(int left, int right) {
        if (left == -1 || right == -1) return;
        const Symbol& l = symbols_[left];
        const Symbol& r = symbols_[right];
        const int32_t rank =
            l.id >= 0 && r.id >= 0 ? vocab_.bpe_rank(l.id, r.id) : vocab_.bpe_rank({l.text, l.n}, {r.text, r.n});
        // (a pair of tokens is never in the string-keyed map, so one lookup decides)
        if (rank < 0) return;
        queue_.push({left, right, rank, l.n + r.n});
    }

    const Vocab& vocab_;
    std::vector<Symbol> symbols_;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
};

}  // namespace

void encode_bpe(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
    BpeSession session(vocab);
    // Words repeat a lot in real text: short ones are merged once per call and then copied.
    constexpr size_t kMaxCachedWordBytes = 48, kMaxCachedWords = 1 << 16;
    std::unordered_map<std::string, std::vector<int32_t>> cache;
    std::vector<int32_t> ids;
    for (std::string& word : vocab.pre->split(text)) {
        if (word.size() > kMaxCachedWordBytes) {
            session.encode_word(word, out);
            continue;
        }
        auto it = cache.find(word);
        if (it == cache.end()) {
            ids.clear();
            session.encode_word(word, ids);
            if (cache.size() >= kMaxCachedWords) cache.clear();
            it = cache.emplace(std::move(word), ids).first;
        }
        out.insert(out.end(), it->second.begin(), it->second.end());
    }
}

}  // namespace critdim::tokenizer
