// The Tokenizer API beyond the vocabulary cases: stories260K against llama-tokenize, BOS
// rules, special-token parsing, pieces, streaming, and refusing broken vocabularies.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "critdim/base.hpp"
#include "test_util.hpp"
#include "tokenizer/tok_test_util.hpp"

namespace critdim::test {
namespace {

using tokenizer::StreamDecoder;
using tokenizer::Tokenizer;

std::string vocab(const std::string& name) { return shared_dir() + "/vocab/ggml-vocab-" + name + ".gguf"; }
std::string stories() { return shared_dir() + "/golden/models/stories260K-f32.gguf"; }

// llama-tokenize's ids for stories260K (golden/MANIFEST.json): BOS added, special tokens
// parsed unless the case says --no-parse-special.
TEST(TokStories, MatchesLlamaTokenize) {
    const auto manifest = nlohmann::json::parse(read_text_file(shared_dir() + "/golden/MANIFEST.json"));
    const nlohmann::json* cases = nullptr;
    std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
        if (cases) return;
        if (j.is_object()) {
            if (j.contains("tokenizer_cases")) cases = &j["tokenizer_cases"]["cases"];
            for (const auto& [k, v] : j.items()) walk(v);
        } else if (j.is_array()) {
            for (const auto& v : j) walk(v);
        }
    };
    walk(manifest);
    ASSERT_NE(cases, nullptr) << "no tokenizer_cases in MANIFEST.json";
    ASSERT_GE(cases->size(), 10u);
    const auto tok = load_tokenizer(stories());
    EXPECT_TRUE(tok->adds_bos());
    EXPECT_EQ(tok->bos_id(), 1);
    for (const auto& c : *cases) {
        const std::string text = c["text"];
        const std::vector<int32_t> expected = c["ids"].get<std::vector<int32_t>>();
        const bool parse_special = c.value("options", "") != "--no-parse-special";
        const auto got = tok->encode(text, true, parse_special);
        EXPECT_EQ(got, expected) << "text " << escape_text(text) << " parse_special=" << parse_special
                                 << "\n  expected " << ids_to_string(expected) << "\n  got      "
                                 << ids_to_string(got);
    }
    EXPECT_EQ(tok->encode("Once upon a time", true, false), (std::vector<int32_t>{1, 403, 407, 261, 378}));
}

TEST(TokApi, BosFollowsTheVocabulary) {
    const auto spm = load_tokenizer(vocab("llama-spm"));
    EXPECT_EQ(spm->model_name(), "llama");
    EXPECT_TRUE(spm->adds_bos());
    EXPECT_EQ(spm->encode("Hello", true, false).front(), 1);
    EXPECT_EQ(spm->encode("", true, false), std::vector<int32_t>{1});
    EXPECT_TRUE(spm->encode("", false, false).empty());

    const auto llama3 = load_tokenizer(vocab("llama-bpe"));
    EXPECT_EQ(llama3->model_name(), "gpt2");
    EXPECT_EQ(llama3->pre_name(), "llama-bpe");
    EXPECT_TRUE(llama3->adds_bos());
    EXPECT_EQ(llama3->encode("Hello", true, false).front(), 128000);

    const auto qwen = load_tokenizer(vocab("qwen2"));
    EXPECT_FALSE(qwen->adds_bos());
    EXPECT_EQ(qwen->encode("Hello", true, false), qwen->encode("Hello", false, false));
    EXPECT_TRUE(qwen->is_eog(151645));  // <|im_end|>
    EXPECT_TRUE(qwen->is_eog(151643));  // <|endoftext|>
    EXPECT_FALSE(qwen->is_eog(9707));

    const auto bert = load_tokenizer(vocab("bert-bge"));
    EXPECT_EQ(bert->model_name(), "bert");
    const auto ids = bert->encode("hello world", true, false);
    ASSERT_GE(ids.size(), 2u);
    EXPECT_EQ(ids.front(), 101);
    EXPECT_EQ(ids.back(), 102);
}

TEST(TokApi, SpecialTokensOnlyWhenAsked) {
    const auto qwen = load_tokenizer(vocab("qwen2"));
    const std::string text = "<|im_start|>user\nHi<|im_end|>";
    const auto parsed = qwen->encode(text, false, true);
    ASSERT_FALSE(parsed.empty());
    EXPECT_EQ(parsed.front(), 151644);
    EXPECT_EQ(parsed.back(), 151645);
    const auto raw = qwen->encode(text, false, false);
    EXPECT_EQ(std::count(raw.begin(), raw.end(), 151644), 0);
    EXPECT_GT(raw.size(), parsed.size());
    EXPECT_EQ(qwen->decode(raw), text);
    // Control tokens render only when asked.
    EXPECT_EQ(qwen->token_to_piece(151644, false), "");
    EXPECT_EQ(qwen->token_to_piece(151644, true), "<|im_start|>");
    // User-defined tokens (<think>) are matched even without parse_special, as in llama.cpp.
    const int32_t think = qwen->find_token("<think>");
    ASSERT_GE(think, 0);
    EXPECT_EQ(qwen->encode("<think>", false, false), std::vector<int32_t>{think});

    const auto llama3 = load_tokenizer(vocab("llama-bpe"));
    const auto ids = llama3->encode("<|begin_of_text|>Hi", false, true);
    EXPECT_EQ(ids.front(), 128000);
    EXPECT_NE(llama3->encode("<|begin_of_text|>Hi", false, false).front(), 128000);
}

TEST(TokApi, PiecesAndDetokenize) {
    const auto spm = load_tokenizer(vocab("llama-spm"));
    const auto ids = spm->encode("Hello world", true, false);
    EXPECT_EQ(spm->decode(ids), "Hello world");
    // llama.cpp's detokenize drops the space prefix only when the ids do not start with BOS.
    EXPECT_EQ(spm->detokenize(ids, true, false), " Hello world");
    EXPECT_EQ(spm->detokenize(ids, false, false), " Hello world");
    EXPECT_EQ(spm->detokenize(spm->encode("Hello world", false, false), false, false), "Hello world");
    EXPECT_EQ(spm->token_to_piece(ids[1], false), " Hello");
    EXPECT_EQ(spm->token_to_piece(1, true), "<s>");
    EXPECT_EQ(spm->token_to_piece(1, false), "");

    const auto gpt2 = load_tokenizer(vocab("gpt-2"));
    const auto g = gpt2->encode("Hello , world 's", false, false);
    EXPECT_EQ(gpt2->decode(g), "Hello , world 's");
    EXPECT_EQ(gpt2->detokenize(g, false, false), "Hello, world's");  // llama.cpp's clean_spaces
}

TEST(TokApi, InvalidUtf8NeverThrows) {
    const std::string bad = "ab\xff\xfe c\xe6\x97 d\xc3";
    for (const std::string name : {"llama-spm", "gpt-2", "qwen2", "llama-bpe", "bert-bge"}) {
        const auto tok = load_tokenizer(vocab(name));
        EXPECT_NO_THROW(tok->encode(bad, true, true)) << name;
    }
    // The ids llama-tokenize gives (--no-escape): SentencePiece spells invalid bytes with
    // byte-fallback tokens (splitting characters by their lead byte, so a following "▁" can
    // end up spelled as bytes); byte-level BPE turns each invalid byte into U+FFFD first.
    const auto spm = load_tokenizer(vocab("llama-spm"));
    EXPECT_EQ(spm->encode(bad, false, false),
              (std::vector<int32_t>{633, 258, 257, 229, 153, 132, 29883, 233, 154, 229, 153, 132, 29881, 198}));
    const auto gpt2 = load_tokenizer(vocab("gpt-2"));
    EXPECT_EQ(gpt2->encode(bad, false, false), (std::vector<int32_t>{397, 6353, 269, 6353, 288, 4210}));
    EXPECT_EQ(gpt2->decode(gpt2->encode("a\xff" "b", false, false)), "a\xef\xbf\xbd" "b");
    const auto qwen = load_tokenizer(vocab("qwen2"));
    EXPECT_EQ(qwen->encode(bad, false, false), (std::vector<int32_t>{370, 9973, 272, 9973, 294, 5691}));
}

TEST(TokStream, NeverEmitsHalfACharacter) {
    const auto spm = load_tokenizer(vocab("llama-spm"));
    const std::string text = "日本語 🙂 naïve";
    const auto ids = spm->encode(text, false, false);
    StreamDecoder stream(*spm);
    std::string joined;
    for (int32_t id : ids) {
        const std::string part = stream.push(id);
        // Every emitted chunk is complete UTF-8 on its own.
        size_t i = 0;
        while (i < part.size()) {
            const auto b = static_cast<uint8_t>(part[i]);
            const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
            ASSERT_LE(i + len, part.size()) << "chunk ends inside a character";
            i += len;
        }
        joined += part;
    }
    joined += stream.flush();
    EXPECT_EQ(joined, " " + text);  // the stream keeps the SentencePiece space prefix
}

TEST(TokStream, ReleasesBytesThatCannotComplete) {
    const auto spm = load_tokenizer(vocab("llama-spm"));
    StreamDecoder stream(*spm);
    const int32_t e6 = spm->find_token("<0xE6>");
    const int32_t a = spm->find_token("<0x61>");
    ASSERT_GE(e6, 0);
    ASSERT_GE(a, 0);
    EXPECT_EQ(stream.push(e6), "");
    EXPECT_EQ(stream.push(a), "\xe6" "a");
    EXPECT_EQ(stream.push(e6), "");
    EXPECT_EQ(stream.flush(), "\xe6");
}

TEST(TokLoad, RefusesBrokenVocabularies) {
    const auto base = gguf::File::open(vocab("gpt-2"));
    auto rewrite = [&](const std::string& drop, const std::string& key, gguf::Value value) {
        gguf::Writer w;
        for (const auto& [k, v] : base->metadata())
            if (k != drop) w.set(k, v);
        if (!key.empty()) w.set(key, std::move(value));
        const std::string path = temp_dir("tok-broken") + "/v.gguf";
        w.write(path);
        return path;
    };
    auto expect_refused = [](const std::string& path, const std::string& key) {
        try {
            load_tokenizer(path);
            ADD_FAILURE() << "loaded a broken vocabulary (" << key << ")";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::input);
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("v.gguf"), std::string::npos) << e.what();
        }
    };
    expect_refused(rewrite("tokenizer.ggml.merges", "", {}), "tokenizer.ggml.merges");
    expect_refused(rewrite("", "tokenizer.ggml.eos_token_id", gguf::Value::u32(60000)), "tokenizer.ggml.eos_token_id");
    expect_refused(rewrite("", "tokenizer.ggml.pre", gguf::Value::str("no-such-pre")), "tokenizer.ggml.pre");
    expect_refused(rewrite("", "tokenizer.ggml.model", gguf::Value::str("t5x")), "tokenizer.ggml.model");
    expect_refused(rewrite("tokenizer.ggml.tokens", "", {}), "tokenizer.ggml.tokens");
    expect_refused(rewrite("", "tokenizer.ggml.token_type", gguf::Value::i32_array({1, 1})), "tokenizer.ggml.token_type");
}

}  // namespace
}  // namespace critdim::test
