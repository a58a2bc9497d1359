// Corpus readers: every format, both MMLU layouts, and errors that name file and line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "critdim/analysis.hpp"
#include "test_util.hpp"

namespace critdim::analysis {
namespace {

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
    const std::string p = dir + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p;
}

std::string error_of(const CorpusSpec& spec) {
    try {
        read_corpus(spec);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

TEST(CorpusSpec, ParsesFormatPrefixAndKeepsOtherColons) {
    EXPECT_EQ(CorpusSpec::parse("mmlu:a/b.csv").format, CorpusFormat::mmlu);
    EXPECT_EQ(CorpusSpec::parse("mmlu:a/b.csv").path, "a/b.csv");
    EXPECT_EQ(CorpusSpec::parse("paragraphs:x.txt").format, CorpusFormat::paragraphs);
    const CorpusSpec odd = CorpusSpec::parse("C:dir/x.txt");
    EXPECT_EQ(odd.format, CorpusFormat::automatic);
    EXPECT_EQ(odd.path, "C:dir/x.txt");
    EXPECT_THROW(CorpusSpec::parse("lines:"), Error);
}

TEST(CorpusText, LinesParagraphsAndWholeFile) {
    const std::string dir = test::temp_dir("corpus");
    const std::string p = write(dir, "t.txt", "one\n  \ntwo\nthree\n\n\nfour\r\n");
    const auto lines = read_corpus(CorpusSpec::parse(p));
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[1].text, "two");
    EXPECT_EQ(lines[3].text, "four");
    EXPECT_EQ(lines[3].source, p + ":7");
    const auto paras = read_corpus(CorpusSpec::parse("paragraphs:" + p));
    ASSERT_EQ(paras.size(), 3u);
    EXPECT_EQ(paras[1].text, "two\nthree");
    EXPECT_EQ(paras[1].source, p + ":3");
    const auto whole = read_corpus(CorpusSpec::parse("file:" + p));
    ASSERT_EQ(whole.size(), 1u);
}

TEST(CorpusText, FolderReadsEachFileByItsExtensionInNameOrder) {
    const std::string dir = test::temp_dir("folder");
    write(dir, "b.txt", "second file\nstill second\n");
    write(dir, "a.txt", "first file\n");
    write(dir, "sub/c.jsonl", "{\"text\": \"x\"}\n{\"text\": \"y\"}\n");
    const auto docs = read_corpus(CorpusSpec::parse(dir));
    ASSERT_EQ(docs.size(), 4u);
    EXPECT_EQ(docs[0].text, "first file\n");
    EXPECT_EQ(docs[1].text, "second file\nstill second\n");
    EXPECT_EQ(docs[3].text, "y");
    EXPECT_NE(error_of(CorpusSpec::parse(test::temp_dir("empty"))).find("no documents"), std::string::npos);
}

TEST(CorpusJson, JsonlFieldAndErrorsNameTheLine) {
    const std::string dir = test::temp_dir("jsonl");
    const std::string p = write(dir, "d.jsonl", "{\"body\": \"a\"}\n\n{\"body\": \"b\", \"n\": 1}\n");
    CorpusSpec spec = CorpusSpec::parse(p);
    spec.field = "body";
    const auto docs = read_corpus(spec);
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[1].text, "b");
    spec.field = "text";
    EXPECT_NE(error_of(spec).find(p + ":1: no field 'text'"), std::string::npos) << error_of(spec);
    const std::string bad = write(dir, "bad.jsonl", "{\"text\": \"a\"}\n{\"text\": 3}\n{oops\n");
    EXPECT_NE(error_of(CorpusSpec::parse(bad)).find(bad + ":2: field 'text' is not a string"), std::string::npos);
}

// Fuzz finding (fuzz_corpus): a number beyond double's range in an instruction list or a JSONL
// line threw nlohmann's out_of_range, which escaped as an internal error.
TEST(CorpusJson, NumberBeyondDoubleRangeIsAnInputError) {
    const std::string dir = test::temp_dir("json-overflow");
    const std::string list = write(dir, "i.json", "[{\"instruction\": \"a\", \"n\": 5031e4753}]");
    EXPECT_NE(error_of(CorpusSpec::parse(list)).find(list + ": not valid JSON"), std::string::npos)
        << error_of(CorpusSpec::parse(list));
    const std::string lines = write(dir, "l.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\", \"n\": 5031e4753}\n");
    EXPECT_NE(error_of(CorpusSpec::parse(lines)).find(lines + ":2: not valid JSON"), std::string::npos)
        << error_of(CorpusSpec::parse(lines));
}

TEST(CorpusJson, InstructionListsOfTheSharedData) {
    const auto docs = read_corpus(
        CorpusSpec::parse(test::shared_dir() + "/data/refusal_direction/splits/harmful_val.json"));
    EXPECT_EQ(docs.size(), 39u);
    EXPECT_FALSE(docs[0].text.empty());
    const std::string dir = test::temp_dir("instr");
    const std::string bad = write(dir, "x.json", "[{\"instruction\": \"a\"}, {\"prompt\": \"b\"}]");
    EXPECT_NE(error_of(CorpusSpec::parse(bad)).find("item 1: no \"instruction\" string"), std::string::npos);
    const std::string broken = write(dir, "y.json", "[\n{\"instruction\": \"a\"},\n{\"instruction\" \"b\"}\n]");
    EXPECT_NE(error_of(CorpusSpec::parse(broken)).find(broken + ":3: not valid JSON"), std::string::npos)
        << error_of(CorpusSpec::parse(broken));
}

TEST(CorpusMmlu, SharedHeaderlessLayoutRendersTheZeroShotPrompt) {
    const auto docs = read_corpus(CorpusSpec::parse(test::shared_dir() + "/data/mmlu/test/abstract_algebra_test.csv"));
    ASSERT_EQ(docs.size(), 100u);
    EXPECT_EQ(docs[0].text,
              "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
              "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
              "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:");
    EXPECT_EQ(docs[0].label, "B");
    EXPECT_EQ(docs[2].label, "D");
    EXPECT_NE(docs[2].text.find("\nC. 0,1\nD. 0,4\n"), std::string::npos);
    // Quoted fields with line breaks: every subject parses to its published count.
    EXPECT_EQ(read_corpus(CorpusSpec::parse(test::shared_dir() + "/data/mmlu/test/high_school_european_history_test.csv"))
                  .size(),
              165u);
}

TEST(CorpusMmlu, HuggingFaceLayoutWithHeaderAndIndexAnswers) {
    const std::string dir = test::temp_dir("hf");
    const std::string p = write(dir, "college_biology_test.csv",
                                "question,choice0,choice1,choice2,choice3,answer\n"
                                "\"  What is a cell?\n(two lines)\",a,\"b, c\",\"say \"\"d\"\"\",e,2\n");
    const auto docs = read_corpus(CorpusSpec::parse(p));
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].label, "C");
    EXPECT_EQ(docs[0].text,
              "The following are multiple choice questions (with answers) about college biology.\n\n"
              "What is a cell?\n(two lines)\nA. a\nB. b, c\nC. say \"d\"\nD. e\nAnswer:");
}

TEST(CorpusMmlu, MalformedRowsNameFileAndLine) {
    const std::string dir = test::temp_dir("mmlu-bad");
    const std::string p = write(dir, "x_test.csv", "q,a,b,c,d,A\n\"multi\nline\",a,b,c,d,B\nq,a,b,c,A\n");
    EXPECT_NE(error_of(CorpusSpec::parse(p)).find(p + ":4: expected 6 fields, found 5"), std::string::npos)
        << error_of(CorpusSpec::parse(p));
    const std::string q = write(dir, "y_test.csv", "q,a,b,c,d,E\n");
    EXPECT_NE(error_of(CorpusSpec::parse(q)).find(q + ":1: answer 'E'"), std::string::npos);
    const std::string u = write(dir, "z_test.csv", "q,a,b,c,d,A\n\"open,a,b,c,d,A\n");
    EXPECT_NE(error_of(CorpusSpec::parse(u)).find(u + ":2: quoted field is not closed"), std::string::npos);
}

TEST(CorpusCsv, AColumnOfAdvBench) {
    CorpusSpec spec = CorpusSpec::parse("csv:" + test::shared_dir() + "/data/harmful/advbench/harmful_behaviors.csv");
    spec.field = "goal";
    const auto docs = read_corpus(spec);
    EXPECT_EQ(docs.size(), 520u);
    EXPECT_EQ(docs[0].source, spec.path + ":2");
    spec.field = "text";
    EXPECT_NE(error_of(spec).find(spec.path + ":1: no column 'text'"), std::string::npos) << error_of(spec);
}

TEST(CorpusErrors, EmptyAndMissingFiles) {
    const std::string dir = test::temp_dir("empty-file");
    const std::string p = write(dir, "e.txt", "\n  \n");
    EXPECT_NE(error_of(CorpusSpec::parse(p)).find(p + ": the corpus is empty"), std::string::npos);
    EXPECT_NE(error_of(CorpusSpec::parse(dir + "/missing.txt")).find("no such file"), std::string::npos);
}

}  // namespace
}  // namespace critdim::analysis
