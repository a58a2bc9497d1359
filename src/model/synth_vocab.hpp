// Tokenizer vocabularies that critdim writes into synthetic models: a SentencePiece-style
// one ("llama") and a byte-level BPE one ("gpt2"), of any size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace critdim::model {

struct SynthVocab {
    std::string model;  // tokenizer.ggml.model
    std::string pre;    // tokenizer.ggml.pre
    std::vector<std::string> tokens;
    std::vector<float> scores;        // SentencePiece only
    std::vector<int32_t> types;       // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
    std::vector<std::string> merges;  // BPE only
    int32_t bos = 0, eos = 0, unk = -1;
    bool add_bos = false;
};

SynthVocab synth_vocab_spm(int64_t n_vocab);
extern const char* const kSynthHarmWords[];
extern const size_t kSynthHarmWordCount;
extern const char* const kSynthRefusalText;
SynthVocab synth_vocab_bpe(int64_t n_vocab, const std::string& pre);

}  // namespace critdim::model
