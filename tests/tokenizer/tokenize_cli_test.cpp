// critdim tokenize: ids as llama-tokenize gives them, flags, and errors with exit codes.
#include <gtest/gtest.h>

#include <fstream>

#include "test_util.hpp"

namespace critdim::test {
namespace {

std::string stories() { return shared_dir() + "/golden/models/stories260K-f32.gguf"; }

TEST(TokCli, IdsOnly) {
    auto r = run_critdim({"tokenize", stories(), "--text", "Once upon a time", "--ids-only"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "1 403 407 261 378\n");
    r = run_critdim({"tokenize", stories(), "--text", "Once upon a time", "--ids-only", "--no-bos"});
    EXPECT_EQ(r.out, "403 407 261 378\n");
}

TEST(TokCli, ParseSpecialAndFile) {
    const std::string path = temp_dir("tok-cli") + "/in.txt";
    std::ofstream(path, std::ios::binary) << "<s> and </s> written as text";
    auto r = run_critdim({"tokenize", stories(), "--file", path, "--ids-only", "--parse-special"});
    EXPECT_EQ(r.out, "1 1 410 269 410 2 410 263 420 362 302 261 419 259 411 444 413\n") << r.err;
    r = run_critdim({"tokenize", stories(), "--file", path, "--ids-only"});
    EXPECT_EQ(r.out, "1 410 504 419 505 269 410 504 492 419 505 263 420 362 302 261 419 259 411 444 413\n") << r.err;
}

TEST(TokCli, PiecesListing) {
    const auto r = run_critdim({"tokenize", shared_dir() + "/vocab/ggml-vocab-llama-spm.gguf", "--text", "Hello\n"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "1\t'<s>'\n15043\t' Hello'\n13\t'\\n'\n");
}

TEST(TokCli, Errors) {
    auto r = run_critdim({"tokenize", stories()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--text"), std::string::npos) << r.err;
    r = run_critdim({"tokenize", stories(), "--text", "a", "--file", "b"});
    EXPECT_EQ(r.exit_code, 2);
    r = run_critdim({"tokenize", "/nonexistent/model.gguf", "--text", "a"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace critdim::test
