// Every tokenizer type on arbitrary bytes (valid or not as UTF-8): encode with and without
// special tokens, decode, and the streaming decoder. The first byte picks the vocabulary.
#include "critdim/gguf.hpp"
#include "critdim/tokenizer.hpp"
#include "fuzz_util.hpp"

namespace {

struct Loaded {
    std::unique_ptr<critdim::gguf::File> file;
    std::unique_ptr<critdim::tokenizer::Tokenizer> tok;
};

std::vector<Loaded> load_all() {
    std::vector<Loaded> v;
    for (const char* name : {"llama-spm", "gpt-2", "llama-bpe", "qwen2", "bert-bge", "phi-3"}) {
        Loaded l;
        l.file = critdim::gguf::File::open(critdim::fuzz::shared_dir() + "/vocab/ggml-vocab-" + name + ".gguf");
        l.tok = critdim::tokenizer::Tokenizer::from_gguf(*l.file);
        v.push_back(std::move(l));
    }
    return v;
}

const std::vector<Loaded>& vocabs() {
    static const std::vector<Loaded> v = load_all();
    return v;
}

}  // namespace

// Loading six vocabularies takes seconds under the sanitizers: done before the first input, so
// it does not count against the per-input timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    vocabs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const critdim::tokenizer::Tokenizer& tok = *vocabs()[data[0] % vocabs().size()].tok;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    for (const bool special : {false, true}) {
        const std::vector<int32_t> ids = tok.encode(text, true, special);
        (void)tok.decode(ids);
        critdim::tokenizer::StreamDecoder stream(tok);
        for (const int32_t id : ids) (void)stream.push(id);
        (void)stream.flush();
    }
    return 0;
}
