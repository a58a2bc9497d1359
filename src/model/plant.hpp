// Planted synthetic models (`critdim synth --plant default`): random weights plus dimensions
// whose behaviour is known, written into the GGUF under critdim.plant.* so tests can read the
// truth. The detectors live in the token embeddings (the same in every architecture); the
// refusal circuit also sets a few attention and output weights (docs/analysis.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "critdim/gguf.hpp"
#include "model/synth_vocab.hpp"

namespace critdim::model {

// The shapes the refusal circuit needs to address attention heads and rows.
struct PlantShape {
    std::string arch;
    int64_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
    bool tied = true;
};

struct Plant {
    int64_t massive_dim = 0;  // huge on the BOS token (position 0 only)
    int64_t digit_dim = 0;    // fires on digits and arithmetic operators
    int64_t domain_dim = 0;   // fires on the domain words
    float massive_value = 0, detector_value = 0;
    std::vector<std::string> domain_words;
    std::vector<int32_t> massive_tokens, digit_tokens, domain_tokens;

    // Refusal: harm-word tokens set refusal_dim; one layer-0 head averages it over the prefix
    // into every later position; nothing else writes that dimension; the output row of the
    // answer token " I cannot" reads it. Not planted (refusal_dim < 0) when the vocabulary is
    // too small to hold the harm words.
    int64_t refusal_dim = -1;
    float refusal_gain = 0;  // the transport head's output weight
    std::vector<std::string> refusal_words;
    std::vector<int32_t> refusal_tokens;
    int32_t refusal_answer = -1;
    std::string refusal_note;  // why it is not planted

    PlantShape shape;
    std::vector<uint8_t> role;  // per token: 0 none, 1 massive, 2 digit, 3 domain, 4 harm, 5 answer

    // Changes row `row` of tensor `name` (n_cols values, drawn already) as the plant needs.
    // Returns an empty function for tensors the plant leaves alone.
    std::function<void(int64_t row, float* values)> adjuster(const std::string& name, int64_t n_cols) const;
    void write_metadata(gguf::Writer& w) const;
};

// name: "default"; anything else is a usage error.
Plant make_plant(const std::string& name, const SynthVocab& vocab, const PlantShape& shape, uint64_t seed);

// The chat template of planted models: "role: content" lines, then "assistant:".
extern const char* const kPlantChatTemplate;

}  // namespace critdim::model
