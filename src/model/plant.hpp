// Planted synthetic models (`critdim synth --plant default`): random weights plus dimensions
// whose behaviour is known, written into the GGUF under critdim.plant.* so tests can read the
// truth. Planting acts on the token embeddings, so it works the same in every architecture.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "critdim/gguf.hpp"
#include "model/synth_vocab.hpp"

namespace critdim::model {

struct Plant {
    int64_t massive_dim = 0;  // huge on the BOS token (position 0 only)
    int64_t digit_dim = 0;    // fires on digits and arithmetic operators
    int64_t domain_dim = 0;   // fires on the domain words
    float massive_value = 0, detector_value = 0;
    std::vector<std::string> domain_words;
    std::vector<int32_t> massive_tokens, digit_tokens, domain_tokens;
    std::vector<uint8_t> role;  // per token: 0 none, 1 massive, 2 digit, 3 domain

    // Sets the planted entries of one token_embd row (values already drawn).
    void adjust_embedding(int64_t token, float* row) const;
    void write_metadata(gguf::Writer& w) const;
};

// name: "default"; anything else is a usage error.
Plant make_plant(const std::string& name, const SynthVocab& vocab, int64_t n_embd, uint64_t seed);

}  // namespace critdim::model
