// The corpus readers on arbitrary bytes: the first byte picks the format (lines, paragraphs,
// JSONL, instruction JSON, MMLU CSV, CSV with a header), the rest is the file.
#include "critdim/analysis.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    using critdim::analysis::CorpusFormat;
    static const CorpusFormat formats[] = {CorpusFormat::lines, CorpusFormat::paragraphs, CorpusFormat::jsonl,
                                           CorpusFormat::instructions, CorpusFormat::mmlu, CorpusFormat::csv};
    critdim::analysis::CorpusSpec spec;
    spec.format = formats[data[0] % 6];
    spec.field = data[0] & 0x80 ? "goal" : "text";
    spec.path = critdim::fuzz::write_input(data + 1, size - 1, "_test.csv");
    critdim::fuzz::expect_only_critdim_errors([&] {
        for (const auto& d : critdim::analysis::read_corpus(spec)) (void)d.text.size();
    });
    return 0;
}
