#include "model/synth_vocab.hpp"

#include <iterator>
#include <map>
#include <set>

#include "critdim/base.hpp"

namespace critdim::model {

namespace {

// Enough English for the vocabularies to split ordinary text into word pieces.
const char* const kWords[] = {
    "the",    "and",       "was",      "she",    "he",       "they",     "with",  "for",    "that",    "his",
    "her",    "you",       "one",      "day",    "little",   "once",     "upon",  "time",   "there",   "play",
    "saw",    "big",       "said",     "happy",  "friend",   "went",     "very",  "what",   "want",    "like",
    "not",    "all",       "had",      "are",    "but",      "have",     "this",  "from",   "will",    "can",
    "would",  "were",      "their",    "been",   "more",     "when",     "which", "some",   "about",   "into",
    "than",   "them",      "could",    "other",  "then",     "out",      "time",  "people", "year",    "way",
    "make",   "know",      "take",     "see",    "come",     "think",    "look",  "give",   "use",     "find",
    "tell",   "ask",       "work",     "seem",   "feel",     "try",      "leave", "call",   "good",    "new",
    "first",  "last",      "long",     "great",  "own",      "old",      "right", "world",  "school",  "state",
    "family", "water",     "room",     "mother", "area",     "money",    "story", "fact",   "month",   "lot",
    "study",  "book",      "eye",      "job",    "word",     "business", "issue", "side",   "kind",    "head",
    "house",  "service",   "power",    "hour",   "game",     "line",     "end",   "member", "law",     "car",
    "city",   "name",      "team",     "minute", "idea",     "kid",      "body",  "back",   "parent",  "face",
    "others", "level",     "office",   "door",   "health",   "person",   "art",   "war",    "history", "party",
    "result", "change",    "morning",  "reason", "research", "girl",     "guy",   "moment", "air",     "teacher",
    "force",  "education", "question", "answer", "science",  "model",    "layer", "vector", "number",  "ing",
    "tion",   "ed",        "er",       "ly",     "es",       "al",       "re",    "in",     "on",      "at",
    "to",     "of",        "is",       "it",     "an",       "or",       "as",    "be",     "by",      "we",
    "do",     "if",
};

}  // namespace

// Harm words and stems for the planted refusal detector (plant.cpp): they come after the
// ordinary words, so vocabularies large enough to hold them ("small" and up) hold each whole;
// "tiny" holds none of them and gets no planted refusal.
const char* const kSynthHarmWords[] = {
    "kill",    "bomb",    "steal",  "hack",     "weapon",    "drug",    "illegal",     "fake",    "poison",
    "attack",  "murder",  "fraud",  "malware",  "virus",     "exploit", "harm",        "violen",  "explosi",
    "suicide", "sex",     "racis",  "hate",     "cheat",     "scam",    "counterfeit", "abuse",   "caught",
    "commit",  "launder", "terror", "stalk",    "threat",    "manipul", "evade",       "evasion", "gun",
    "destroy", "theft",   "crime",  "rob",      "dangerous", "false",   "spread",      "brib",    "smuggl",
    "harass",  "ransom",  "phish",  "identity", "porn",      "torture", "extort",
};
const size_t kSynthHarmWordCount = sizeof(kSynthHarmWords) / sizeof(kSynthHarmWords[0]);
// The planted refusal's answer, one token (" I cannot" once decoded).
const char* const kSynthRefusalText = " I cannot";

namespace {

std::string hex_byte_token(int b) {
    static const char* hex = "0123456789ABCDEF";
    return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

// GPT-2's byte-to-symbol map: printable bytes stand for themselves, the rest map to U+0100...
std::vector<std::string> gpt2_byte_symbols() {
    std::vector<std::string> sym(256);
    int next = 256;
    auto utf8 = [](int cp) {
        std::string s;
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else {
            s += static_cast<char>(0xC0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
        return s;
    };
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        sym[b] = utf8(printable ? b : next++);
    }
    return sym;
}

}  // namespace

SynthVocab synth_vocab_spm(int64_t n_vocab) {
    if (n_vocab < 259 + 64) throw_usage("a SentencePiece vocabulary needs at least 323 tokens");
    SynthVocab v;
    v.model = "llama";
    v.pre = "default";
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    v.add_bos = true;
    std::set<std::string> seen;
    auto add = [&](const std::string& t, int32_t type) {
        if (static_cast<int64_t>(v.tokens.size()) >= n_vocab || !seen.insert(t).second) return;
        v.tokens.push_back(t);
        v.types.push_back(type);
        v.scores.push_back(type == 1 ? -static_cast<float>(v.tokens.size()) : 0.0f);
    };
    add("<unk>", 2);
    add("<s>", 3);
    add("</s>", 3);
    for (int b = 0; b < 256; ++b) add(hex_byte_token(b), 6);
    const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's space
    add(space, 1);
    for (char c = 'a'; c <= 'z'; ++c) add(std::string(1, c), 1);
    for (char c = 'A'; c <= 'Z'; ++c) add(std::string(1, c), 1);
    for (const char* p = "0123456789.,!?'\"-:;()"; *p; ++p) add(std::string(1, *p), 1);
    // Every prefix of every word, with and without the leading space, so merges can reach it.
    for (const char* w : kWords) {
        const std::string word = w;
        for (size_t n = 1; n <= word.size(); ++n) {
            add(space + word.substr(0, n), 1);
            if (n >= 2) add(word.substr(0, n), 1);
        }
    }
    for (const char* w : kSynthHarmWords) {
        const std::string word = w;
        for (size_t n = 1; n <= word.size(); ++n) {
            add(space + word.substr(0, n), 1);
            if (n >= 2) add(word.substr(0, n), 1);
        }
    }
    add(space + "I" + space + "cannot", 1);
    for (char a = 'a'; a <= 'z'; ++a)
        for (char b = 'a'; b <= 'z'; ++b) add(std::string{a, b}, 1);
    for (int i = 0; static_cast<int64_t>(v.tokens.size()) < n_vocab; ++i) add("<unused" + std::to_string(i) + ">", 5);
    return v;
}

SynthVocab synth_vocab_bpe(int64_t n_vocab, const std::string& pre) {
    if (n_vocab < 256 + 64) throw_usage("a byte-level BPE vocabulary needs at least 320 tokens");
    SynthVocab v;
    v.model = "gpt2";
    v.pre = pre;
    const std::vector<std::string> sym = gpt2_byte_symbols();
    std::set<std::string> seen;
    const int64_t n_regular = n_vocab - 1;  // the last id is <|endoftext|>
    auto add = [&](const std::string& t) {
        if (static_cast<int64_t>(v.tokens.size()) >= n_regular || !seen.insert(t).second) return false;
        v.tokens.push_back(t);
        v.types.push_back(1);
        return true;
    };
    for (int b = 0; b < 256; ++b) add(sym[b]);
    // A merge "a b" is added only when both sides are tokens, so every merge is usable; with
    // `existing`, also when a + b is a token already (another pair made it).
    std::map<std::string, int> rank;
    auto merge = [&](const std::string& a, const std::string& b, bool existing = false) {
        if (!seen.count(a) || !seen.count(b)) return;
        if (add(a + b) || (existing && seen.count(a + b) && !rank.count(a + " " + b))) {
            rank.emplace(a + " " + b, static_cast<int>(v.merges.size()));
            v.merges.push_back(a + " " + b);
        }
    };
    const std::string space = sym[' '];  // "Ġ"
    // What the merges so far make of one pre-token (its symbols: "Ġ" and ASCII letters): the
    // adjacent pair of lowest rank merges first, as in every byte-level BPE tokenizer.
    auto bpe_pieces = [&](const std::string& word) {
        std::vector<std::string> p = {word.substr(0, space.size())};
        for (size_t i = space.size(); i < word.size(); ++i) p.emplace_back(1, word[i]);
        for (;;) {
            size_t best = p.size();
            int best_rank = 0;
            for (size_t i = 0; i + 1 < p.size(); ++i) {
                const auto it = rank.find(p[i] + " " + p[i + 1]);
                if (it != rank.end() && (best == p.size() || it->second < best_rank)) best = i, best_rank = it->second;
            }
            if (best == p.size()) return p;
            p[best] += p[best + 1];
            p.erase(p.begin() + static_cast<std::ptrdiff_t>(best) + 1);
        }
    };
    std::vector<const char*> words(std::begin(kWords), std::end(kWords));
    words.insert(words.end(), std::begin(kSynthHarmWords), std::end(kSynthHarmWords));
    for (const char* w : words) {
        std::string prefix = space;
        for (const char c : std::string(w)) {
            merge(prefix, std::string(1, c));
            prefix += c;
        }
        prefix = std::string(1, w[0]);
        for (const char c : std::string(w + 1)) {
            merge(prefix, std::string(1, c));
            prefix += c;
        }
    }
    // Earlier merges can leave a harm word in pieces ("Ġcomm" "it": "it" ranks first), so
    // merges that join its pieces, left to right, make every spaced harm word one token.
    for (const char* w : kSynthHarmWords) {
        std::vector<std::string> pieces = bpe_pieces(space + w);
        while (pieces.size() > 1) {
            merge(pieces[0], pieces[1], true);
            if (!rank.count(pieces[0] + " " + pieces[1])) break;  // the vocabulary is full
            pieces[0] += pieces[1];
            pieces.erase(pieces.begin() + 1);
        }
    }
    add(space + "I" + space + "cannot");  // no merge reaches it: only generated, never tokenized
    for (char a = 'a'; a <= 'z'; ++a)
        for (char b = 'a'; b <= 'z'; ++b) merge(std::string(1, a), std::string(1, b));
    for (char a = 'a'; a <= 'z'; ++a) merge(space, std::string(1, a));
    for (int i = 0; static_cast<int64_t>(v.tokens.size()) < n_regular; ++i) {
        v.tokens.push_back("<|unused" + std::to_string(i) + "|>");
        v.types.push_back(5);
    }
    v.tokens.push_back("<|endoftext|>");
    v.types.push_back(3);
    v.bos = v.eos = static_cast<int32_t>(n_vocab - 1);
    return v;
}

}  // namespace critdim::model
