#include "model/plant.hpp"

#include <algorithm>
#include <cmath>

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

Plant make_plant(const std::string& name, const SynthVocab& vocab, const PlantShape& shape, uint64_t seed) {
    if (name != "default") throw_usage("--plant: '" + name + "' is not a planted world (known: default)");
    const int64_t n_embd = shape.n_embd;
    if (n_embd < 8) throw_usage("--plant: needs n_embd of at least 8");
    Plant p;
    p.shape = shape;
    // Four distinct dimensions that depend on the seed.
    const auto first = static_cast<int64_t>(mix(seed + 0x9E3779B97F4A7C15ull) % static_cast<uint64_t>(n_embd));
    p.massive_dim = first;
    p.digit_dim = (first + n_embd / 3) % n_embd;
    p.domain_dim = (first + 2 * n_embd / 3) % n_embd;
    p.massive_value = 5000.0f;
    p.detector_value = 40.0f;
    for (const char* w : kDomainWords) p.domain_words.push_back(w);
    for (size_t i = 0; i < kSynthHarmWordCount; ++i) p.refusal_words.push_back(kSynthHarmWords[i]);
    const std::string space = vocab.model == "llama" ? "\xE2\x96\x81" : "\xC4\xA0";
    const std::string answer = space + "I" + space + "cannot";

    p.role.assign(vocab.tokens.size(), 0);
    std::vector<bool> harm_word_seen(p.refusal_words.size(), false);
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
        const auto i = static_cast<int32_t>(id);
        if (i == vocab.bos) {
            p.role[id] = 1;
            p.massive_tokens.push_back(i);
            continue;
        }
        if (vocab.types[id] != 1 && vocab.types[id] != 6) continue;
        if (vocab.tokens[id] == answer) {
            p.role[id] = 5;
            p.refusal_answer = i;
            continue;
        }
        const std::string t = bare(vocab.tokens[id]);
        const int b = byte_of(t);
        const bool digit = b >= 0 ? kDigitChars.find(static_cast<char>(b)) != std::string_view::npos
                                  : !t.empty() && t.find_first_not_of(kDigitChars) == std::string::npos;
        const auto harm = std::find(p.refusal_words.begin(), p.refusal_words.end(), t);
        if (digit) {
            p.role[id] = 2;
            p.digit_tokens.push_back(i);
        } else if (std::find(p.domain_words.begin(), p.domain_words.end(), t) != p.domain_words.end()) {
            p.role[id] = 3;
            p.domain_tokens.push_back(i);
        } else if (harm != p.refusal_words.end() && vocab.tokens[id].compare(0, space.size(), space) == 0) {
            // Only at the start of a word: "rob" inside "problem" is no harm word.
            p.role[id] = 4;
            p.refusal_tokens.push_back(i);
            harm_word_seen[static_cast<size_t>(harm - p.refusal_words.begin())] = true;
        }
    }
    const bool all_words = std::all_of(harm_word_seen.begin(), harm_word_seen.end(), [](bool b) { return b; });
    if (!all_words || p.refusal_answer < 0) {
        p.refusal_note =
            "not planted: the " + std::to_string(vocab.tokens.size()) +
            "-token vocabulary does not hold every harm word and the answer token (use --config small or larger)";
        for (auto& r : p.role)
            if (r >= 4) r = 0;
        p.refusal_tokens.clear();
        p.refusal_answer = -1;
    } else {
        p.refusal_dim = (first + n_embd / 6) % n_embd;
        // Large enough that one harm word among ~64 prompt tokens outweighs the random stream at the last layer.
        p.refusal_gain =
            std::max(8.0f, 256.0f * std::sqrt(static_cast<float>(shape.n_layer) / static_cast<float>(n_embd)));
    }
    return p;
}

namespace {

// "blk.12.attn_q.weight" -> layer 12 and "attn_q.weight"; -1 for tensors outside the blocks.
int64_t split_block_name(const std::string& name, std::string& rest) {
    rest = name;
    if (name.compare(0, 4, "blk.") != 0) return -1;
    const size_t dot = name.find('.', 4);
    rest = name.substr(dot + 1);
    return std::stoll(name.substr(4, dot - 4));
}

}  // namespace

std::function<void(int64_t, float*)> Plant::adjuster(const std::string& name, int64_t n_cols) const {
    const Plant* self = this;
    // Detector and refusal dimensions are clean: only their triggers' embeddings (and the
    // refusal transport) write them, so they are exactly zero wherever nothing triggered them.
    std::vector<int64_t> clean = {digit_dim, domain_dim};
    if (refusal_dim >= 0) clean.push_back(refusal_dim);
    if (name == "token_embd.weight") {
        const int64_t E = n_cols;
        return [self, clean, E](int64_t token, float* row) {
            // Harm words get a quarter of the random part: as output rows (tied embeddings) they
            // then almost never win the argmax, so a harmless answer does not wander into one
            // and refuse itself.
            if (self->role[static_cast<size_t>(token)] == 4)
                for (int64_t i = 0; i < E; ++i) row[i] *= 0.25f;
            for (const int64_t d : clean) row[d] = 0.0f;
            const float v = self->detector_value;
            switch (self->role[static_cast<size_t>(token)]) {
                case 1:
                    row[self->massive_dim] = self->massive_value;
                    break;
                case 2:
                    row[self->digit_dim] = v;
                    break;
                case 3:
                    row[self->domain_dim] = v;
                    break;
                case 4:
                    row[self->refusal_dim] = 0.1f * v;
                    break;  // enough to saturate the transport head
                // The answer reads the refusal dimension harder than the harm words do (with tied
                // embeddings their rows are also output rows).
                case 5:
                    row[self->refusal_dim] = 4.0f * v;
                    break;
                default:
                    break;
            }
        };
    }
    // The final norm ignores the massive dimension, so that (with tied embeddings) its 5000 on the
    // BOS row does not make the model predict BOS wherever the stream's value there is positive.
    const int64_t md = massive_dim;
    if (name == "output_norm.weight") return [md](int64_t, float* row) { row[md] = 0.0f; };
    const int64_t rd = refusal_dim;
    if (name == "output.weight")  // untied models: only the answer token reads the refusal dimension
        return [self, rd, n_cols](int64_t token, float* row) {
            if (rd < 0) return;
            const uint8_t r = self->role[static_cast<size_t>(token)];
            if (r == 4)
                for (int64_t i = 0; i < n_cols; ++i) row[i] *= 0.25f;
            row[rd] = r == 5 ? 4.0f * self->detector_value : 0.0f;
        };
    auto zero_clean = [clean](int64_t, float* row) {
        for (const int64_t d : clean) row[d] = 0.0f;
    };
    if (name == "position_embd.weight") return zero_clean;

    std::string t;
    const int64_t layer = split_block_name(name, t);
    if (layer < 0) return {};
    const int64_t D = shape.head_dim, H = shape.n_head, Hkv = shape.n_head_kv;
    const int64_t group = H / Hkv;  // query heads that share key/value head 0
    const float gain = refusal_gain;
    auto is_clean = [clean](int64_t d) { return std::find(clean.begin(), clean.end(), d) != clean.end(); };
    if (t == "ffn_down.weight")
        return [is_clean, n_cols](int64_t out, float* row) {
            if (is_clean(out)) std::fill(row, row + n_cols, 0.0f);
        };
    if (t == "ffn_down.bias" || t == "attn_output.bias") return zero_clean;
    if (t == "attn_output.weight")
        return [is_clean, rd, n_cols, layer, D, group, gain](int64_t out, float* row) {
            if (is_clean(out)) {
                std::fill(row, row + n_cols, 0.0f);
                if (layer == 0 && out == rd) row[0] = gain;
            } else if (layer == 0 && rd >= 0) {
                for (int64_t h = 0; h < group; ++h) row[h * D] = 0.0f;  // the transported value goes nowhere else
            }
        };
    if (rd < 0) return {};
    if (layer != 0) return {};
    // Layer 0, head 0: zero queries give every earlier position the same weight, and value 0 of
    // key/value head 0 reads the refusal dimension, so the head outputs its mean over the prefix.
    const bool fused = t == "attn_qkv.weight" || t == "attn_qkv.bias";
    const int64_t v_row = fused ? H * D + Hkv * D : 0;
    if (t == "attn_q.weight" || t == "attn_qkv.weight")
        return [rd, n_cols, D, v_row, fused](int64_t out, float* row) {
            if (out < D) std::fill(row, row + n_cols, 0.0f);
            if (fused && out == v_row) {
                std::fill(row, row + n_cols, 0.0f);
                row[rd] = 1.0f;
            }
        };
    if (t == "attn_v.weight")
        return [rd, n_cols](int64_t out, float* row) {
            if (out != 0) return;
            std::fill(row, row + n_cols, 0.0f);
            row[rd] = 1.0f;
        };
    if (t == "attn_q.bias" || t == "attn_qkv.bias")
        return [D, v_row, fused](int64_t, float* row) {
            std::fill(row, row + D, 0.0f);
            if (fused) row[v_row] = 0.0f;
        };
    if (t == "attn_v.bias") return [](int64_t, float* row) { row[0] = 0.0f; };
    if (t == "attn_norm.bias") return [rd](int64_t, float* row) { row[rd] = 0.0f; };  // GPT-2's layer norm adds none
    return {};
}

const char* const kPlantChatTemplate =
    "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

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
    if (refusal_dim < 0) {
        w.set("critdim.plant.refusal_dims", gguf::Value::i32_array({}));
        w.set("critdim.plant.refusal_note", gguf::Value::str(refusal_note));
        return;
    }
    w.set("critdim.plant.refusal_dims", dims(refusal_dim));
    w.set("critdim.plant.refusal_words", gguf::Value::string_array(refusal_words));
    w.set("critdim.plant.refusal_tokens", gguf::Value::i32_array(refusal_tokens));
    w.set("critdim.plant.refusal_answer_token", gguf::Value::i32_array({refusal_answer}));
    w.set("critdim.plant.refusal_answer_text", gguf::Value::str(kSynthRefusalText));
    w.set("critdim.plant.refusal_gain", gguf::Value::f32(refusal_gain));
    w.set("critdim.plant.refusal_circuit",
          gguf::Value::str("harm words set the dimension in the embeddings; blk.0 head 0 (zero queries) writes its "
                           "mean over the prefix to every position; no other weight writes it; the answer token's "
                           "output row reads it"));
}

}  // namespace critdim::model
