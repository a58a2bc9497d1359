// The commands end to end: exit codes, messages, output files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "critdim/base.hpp"
#include "critdim/gguf.hpp"
#include "test_util.hpp"

namespace critdim {
namespace {

using nlohmann::json;

std::string golden(const std::string& rel) { return test::shared_dir() + "/golden/" + rel; }

TEST(CliGenerate, Stories260KGreedyTextIsThePublishedOne) {
    const auto r = test::run_critdim({"generate", golden("models/stories260K-f32.gguf"), "--prompt", "Once upon a time",
                                      "-n", "64", "--ctx", "128", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // golden/README.md: llama2.c's run.c prints the prompt and the first 60 pieces; the last
    // four continue as its doc's sample.
    EXPECT_EQ(
        r.out,
        ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red "
        "ball. She wanted to play with it, but it was too high.\nLily's mom said\n");
}

TEST(CliGenerate, SeededSamplingRepeatsAndJsonHasIds) {
    const std::vector<std::string> args = {"generate", golden("models/stories260K-f32.gguf"),
                                           "--prompt", "Once upon a time",
                                           "-n",       "24",
                                           "--ctx",    "128",
                                           "--temp",   "0.9",
                                           "--top-k",  "40",
                                           "--top-p",  "0.9",
                                           "--seed",   "11",
                                           "--json"};
    const auto a = test::run_critdim(args), b = test::run_critdim(args);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    const json ja = json::parse(a.out), jb = json::parse(b.out);
    EXPECT_EQ(ja["tokens"], jb["tokens"]);
    EXPECT_EQ(ja["prompt_ids"], json::parse("[1, 403, 407, 261, 378]"));
    EXPECT_EQ(ja["tokens"].size(), 24u);
}

TEST(CliGenerate, ContextOverflowIsAUsageError) {
    const auto r =
        test::run_critdim({"generate", golden("models/stories260K-f32.gguf"), "--prompt", "Once", "-n", "500"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("exceed the model's training context of 128"), std::string::npos) << r.err;
}

TEST(CliGenerate, ChatNeedsATemplateAndRendersTheBuiltInOne) {
    const std::string model = test::temp_dir("chat") + "/qwen.gguf";
    ASSERT_EQ(
        test::run_critdim({"synth", "--arch", "qwen2", "--config", "tiny", "--seed", "2", "--out", model}).exit_code,
        0);
    auto r = test::run_critdim({"generate", model, "--prompt", "hi", "-n", "2", "--chat"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("has no tokenizer.chat_template; name one with --chat-template"), std::string::npos) << r.err;
    r = test::run_critdim({"generate", model, "--prompt", "hi", "-n", "2", "--chat", "--chat-template", "chatml",
                           "--system", "Be brief.", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    // is far longer than the two-word prompt alone.
    EXPECT_GT(json::parse(r.out)["prompt_ids"].size(), 30u);
    r = test::run_critdim({"generate", model, "--prompt", "hi", "-n", "2", "--chat", "--chat-template", "nonesuch"});
    EXPECT_EQ(r.exit_code, 2);
}

TEST(CliPpl, Stories260KExodusMatchesLlamaPerplexityF32Cache) {
    const auto r = test::run_critdim({"ppl", golden("models/stories260K-f32.gguf"), "--file",
                                      golden("trained/exodus-1-13-kjv.txt"), "--ctx", "128", "--json", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["n_chunks"], 220);
    EXPECT_NEAR(j["ppl"].get<double>(), 65.4109, 65.4109 * 1e-4);  // within 0.01 %
    EXPECT_NEAR(j["ppl_stderr"].get<double>(), 1.88129, 1e-4);
}

// Long (about a minute in Release): the sanitizer run filters it out (.ci/run).
TEST(CliPpl, Stories260KWikitextMatchesLlamaPerplexityF32Cache) {
    const auto r =
        test::run_critdim({"ppl", golden("models/stories260K-f32.gguf"), "--file",
                           test::shared_dir() + "/data/wikitext/wiki.test.raw", "--ctx", "128", "--json", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["n_chunks"], 6322);
    EXPECT_NEAR(j["ppl"].get<double>(), 111.6969, 111.6969 * 1e-4);
}

TEST(CliDump, WritesNpyWithShapesAndMatchesGolden) {
    const std::string dir = test::temp_dir("dump");
    const auto r = test::run_critdim({"dump", golden("models/stories260K-f32.gguf"), "--tokens", "1,403,407,261,378",
                                      "--out", dir, "--points", "resid_post,embed,mlp_out"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const NpyArray logits = read_npy(dir + "/logits.npy");
    EXPECT_EQ(logits.shape, (std::vector<int64_t>{5, 512}));
    const NpyArray resid = read_npy(dir + "/resid_post.npy");
    EXPECT_EQ(resid.shape, (std::vector<int64_t>{5, 5, 64}));
    EXPECT_EQ(read_npy(dir + "/embed.npy").shape, (std::vector<int64_t>{5, 64}));
    EXPECT_EQ(read_npy(dir + "/mlp_out.npy").shape, (std::vector<int64_t>{5, 5, 64}));
    const NpyArray want = read_npy(golden("cases/stories260K/resid_post.npy"));
    for (size_t i = 0; i < want.data.size(); ++i) ASSERT_NEAR(resid.data[i], want.data[i], 1.1e-5) << i;
}

TEST(CliDump, BadTokensAndMissingFilesAreClearErrors) {
    const std::string dir = test::temp_dir("dump");
    auto r = test::run_critdim({"dump", golden("models/stories260K-f32.gguf"), "--tokens", "1,x,3", "--out", dir});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--tokens: 'x' is not a token id"), std::string::npos) << r.err;
    r = test::run_critdim({"dump", golden("models/stories260K-f32.gguf"), "--tokens", "1,9999", "--out", dir});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("token id 9999 is out of range (vocabulary has 512 tokens)"), std::string::npos) << r.err;
    r = test::run_critdim({"dump", "/nonexistent.gguf", "--tokens", "1", "--out", dir});
    EXPECT_EQ(r.exit_code, 5);
    EXPECT_EQ(r.err.rfind("critdim: error: /nonexistent.gguf: cannot open", 0), 0u) << r.err;
}

TEST(CliInfo, JsonDescribesTheModel) {
    const auto r = test::run_critdim({"info", golden("models/gemma2-f32.gguf"), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["architecture"], "gemma2");
    EXPECT_EQ(j["n_layer"], 26);
    EXPECT_EQ(j["head_dim"], 32);
    EXPECT_EQ(j["sliding_window"], 4);
    EXPECT_EQ(j["tensor_types"]["F32"], 288);
}

TEST(CliInfo, UnsupportedArchitectureListsSupportedOnes) {
    const std::string path = test::temp_dir("arch") + "/m.gguf";
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::str("mamba"));
    w.write(path);
    const auto r = test::run_critdim({"info", path});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("architecture 'mamba' is not supported (supported: llama, qwen2, qwen3, gemma2, gpt2, phi3)"),
              std::string::npos)
        << r.err;
}

TEST(CliEveryCommand, HasHelp) {
    for (const char* cmd : {"info", "tokenize", "dump", "generate", "ppl", "bench", "synth", "scan", "merge", "find",
                            "explain", "import-cvector", "export-cvector", "judge", "mmlu", "jailbreak", "ablate", "reproduce", "serve"}) {
        const auto r = test::run_critdim({cmd, "--help"});
        EXPECT_EQ(r.exit_code, 0) << cmd;
        EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
    }
}

}  // namespace
}  // namespace critdim

namespace critdim {
namespace {

// The README's main job (scripts/demo.sh): scan -> find -> explain -> vector -> generate on the
// planted model; the planted refusal dimension is found and steering through it alone complies.
TEST(Demo, MainJobRunsEndToEnd) {
    const std::string out = test::temp_dir("demo");
    const std::string bin = test::critdim_binary();
    const std::string build = bin.substr(0, bin.rfind("/src/cli/"));
    const std::string cmd = "CRITDIM_DEMO_OUT='" + out + "' bash '" + test::source_dir() + "/scripts/demo.sh' '" +
                            build + "' > '" + out + "/stdout.txt' 2> '" + out + "/stderr.txt'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream f(out + "/stdout.txt");
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    for (const char* file :
         {"critical-refusal.json", "critical-math.json", "report.html", "cds-refusal.json", "whole-refusal.json"})
        EXPECT_TRUE(std::filesystem::exists(out + "/" + file)) << file;
    // unsteered refuses; the critical-dimension plan at alpha -0.3 does not
    const size_t first = text.find("I cannot");
    ASSERT_NE(first, std::string::npos) << text;
    const size_t unsteered_end = text.find('\n', first);
    const size_t cds_end = text.find('\n', unsteered_end + 1);
    EXPECT_EQ(text.substr(unsteered_end + 1, cds_end - unsteered_end - 1).find("I cannot"), std::string::npos) << text;
}

}  // namespace
}  // namespace critdim
