// Every vocabulary against llama.cpp's expected ids (../shared/vocab, no BOS, special tokens
// not parsed), plus the round trip decode(encode(x)) == x where the vocabulary is lossless.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include "tokenizer/tok_test_util.hpp"

namespace critdim::test {
namespace {

void check_cases(const std::string& gguf_path, const std::string& cases_stem, bool lossless) {
    const auto tok = load_tokenizer(gguf_path);
    const auto cases = read_vocab_cases(cases_stem + ".inp", cases_stem + ".out");
    ASSERT_FALSE(cases.empty());
    int failures = 0;
    for (const VocabCase& c : cases) {
        const std::vector<int32_t> got = tok->encode(c.text, false, false);
        if (got != c.ids) {
            ++failures;
            ADD_FAILURE() << gguf_path << ": text " << escape_text(c.text) << "\n  expected " << ids_to_string(c.ids)
                          << "\n  got      " << ids_to_string(got);
            continue;
        }
        if (lossless) {
            const std::string back = tok->decode(got);
            EXPECT_EQ(back, c.text) << gguf_path << ": round trip of " << escape_text(c.text);
        }
    }
    EXPECT_EQ(failures, 0) << failures << " of " << cases.size() << " cases differ";
}

std::string vocab(const std::string& name) { return shared_dir() + "/vocab/ggml-vocab-" + name + ".gguf"; }

void check_shared(const std::string& name, bool lossless = true) { check_cases(vocab(name), vocab(name), lossless); }

void check_more(const std::string& name, bool lossless = true) {
    check_cases(more_vocab_dir() + "/ggml-vocab-" + name + ".gguf", vocab(name), lossless);
}

TEST(VocabSpm, LlamaSpm) { check_shared("llama-spm"); }
TEST(VocabSpm, Phi3) { check_shared("phi-3"); }
TEST(VocabBpe, Gpt2) { check_shared("gpt-2"); }
TEST(VocabBpe, LlamaBpe) { check_shared("llama-bpe"); }
TEST(VocabBpe, Qwen2) { check_shared("qwen2"); }
TEST(VocabBpe, DeepseekR1QwenOnQwen2) { check_cases(vocab("qwen2"), vocab("deepseek-r1-qwen"), true); }
TEST(VocabBpe, DeepseekCoder) { check_more("deepseek-coder"); }
TEST(VocabBpe, Falcon) { check_more("falcon"); }
TEST(VocabBpe, Mpt) { check_more("mpt"); }
TEST(VocabBpe, Refact) { check_more("refact"); }
TEST(VocabBpe, Starcoder) { check_more("starcoder"); }
TEST(VocabWpm, BertBge) { check_shared("bert-bge", false); }

// baichuan and gpt-neox have no cases upstream: they must load and encode something sane.
TEST(VocabBpe, BaichuanAndGptNeoxLoad) {
    for (const std::string name : {"baichuan", "gpt-neox"}) {
        const auto tok = load_tokenizer(more_vocab_dir() + "/ggml-vocab-" + name + ".gguf");
        const auto ids = tok->encode("Hello world", false, false);
        EXPECT_FALSE(ids.empty()) << name;
        EXPECT_EQ(tok->decode(ids), "Hello world") << name;
    }
}

}  // namespace
}  // namespace critdim::test
