#include "model/plant.hpp"

#include <algorithm>

#include "critdim/base.hpp"

namespace critdim::model {

namespace {

// Domain words: among the first words of the synthetic vocabularies, so that even the smallest
// ones ("tiny", 512 tokens) hold each as a whole token, with and without the space marker.
const char* const kDomainWords[] = {"friend", "happy", "play", "little", "big"};
constexpr std::string_view kDigitChars = "0123456789+-*/=";

// The token's text without the vocabulary's space marker (SentencePiece U+2581, GPT-2 'Ġ').
std::string bare(const std::string& t) {
    for (const std::string_view mark : {std::string_view("\xE2\x96\x81"), std::string_view("\xC4\xA0")})
        if (t.size() > mark.size() && t.compare(0, mark.size(), mark) == 0) return t.substr(mark.size());
    return t;
}

// A SentencePiece byte token "<0xHH>" stands for that byte.
int byte_of(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    return std::stoi(t.substr(3, 2), nullptr, 16);
}

uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace

Plant make_plant(const std::string& name, const SynthVocab& vocab, int64_t n_embd, uint64_t seed) {
    if (name != "default") throw_usage("--plant: '" + name + "' is not a planted world (known: default)");
    if (n_embd < 8) throw_usage("--plant: needs n_embd of at least 8");
    Plant p;
    // Three distinct dimensions that depend on the seed.
    const auto first = static_cast<int64_t>(mix(seed + 0x9E3779B97F4A7C15ull) % static_cast<uint64_t>(n_embd));
    p.massive_dim = first;
    p.digit_dim = (first + n_embd / 3) % n_embd;
    p.domain_dim = (first + 2 * n_embd / 3) % n_embd;
    p.massive_value = 5000.0f;
    p.detector_value = 40.0f;
    for (const char* w : kDomainWords) p.domain_words.push_back(w);

    p.role.assign(vocab.tokens.size(), 0);
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
        const auto i = static_cast<int32_t>(id);
        if (i == vocab.bos) {
            p.role[id] = 1;
            p.massive_tokens.push_back(i);
            continue;
        }
        if (vocab.types[id] != 1 && vocab.types[id] != 6) continue;
        const std::string t = bare(vocab.tokens[id]);
        const int b = byte_of(t);
        const bool digit = b >= 0 ? kDigitChars.find(static_cast<char>(b)) != std::string_view::npos
                                  : !t.empty() && t.find_first_not_of(kDigitChars) == std::string::npos;
        if (digit) {
            p.role[id] = 2;
            p.digit_tokens.push_back(i);
        } else if (std::find(p.domain_words.begin(), p.domain_words.end(), t) != p.domain_words.end()) {
            p.role[id] = 3;
            p.domain_tokens.push_back(i);
        }
    }
    return p;
}

void Plant::adjust_embedding(int64_t token, float* row) const {
    switch (role[static_cast<size_t>(token)]) {
        case 1: row[massive_dim] = massive_value; break;
        case 2: row[digit_dim] = detector_value; break;
        case 3: row[domain_dim] = detector_value; break;
        default: break;
    }
}

void Plant::write_metadata(gguf::Writer& w) const {
    auto dims = [](int64_t d) { return gguf::Value::i32_array({static_cast<int32_t>(d)}); };
    w.set("critdim.plant.name", gguf::Value::str("default"));
    w.set("critdim.plant.massive_dims", dims(massive_dim));
    w.set("critdim.plant.massive_value", gguf::Value::f32(massive_value));
    w.set("critdim.plant.massive_tokens", gguf::Value::i32_array(massive_tokens));
    w.set("critdim.plant.massive_positions", gguf::Value::str("first (the BOS token)"));
    w.set("critdim.plant.digit_dims", dims(digit_dim));
    w.set("critdim.plant.digit_triggers", gguf::Value::str(std::string(kDigitChars)));
    w.set("critdim.plant.digit_tokens", gguf::Value::i32_array(digit_tokens));
    w.set("critdim.plant.domain_dims", dims(domain_dim));
    w.set("critdim.plant.domain_words", gguf::Value::string_array(domain_words));
    w.set("critdim.plant.domain_tokens", gguf::Value::i32_array(domain_tokens));
    w.set("critdim.plant.detector_value", gguf::Value::f32(detector_value));
    w.set("critdim.plant.refusal_dims", gguf::Value::i32_array({}));  // not planted yet
}

}  // namespace critdim::model
