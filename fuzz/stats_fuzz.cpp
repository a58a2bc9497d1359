// The stats-file reader (a GGUF container of float64 arrays) on arbitrary bytes.
#include "critdim/analysis.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = critdim::fuzz::write_input(data, size, ".stats");
    critdim::fuzz::expect_only_critdim_errors([&] { (void)critdim::analysis::Stats::read(path); });
    return 0;
}
