// Shared by the scale tests: a small synthetic model and a corpus big enough for a few shards.
#pragma once

#include <string>
#include <vector>

namespace critdim::test {

std::string scale_model();              // synth `tiny`, seed 11
std::string scale_corpus(int n_lines);  // numbered lines of varied text
// `critdim scan` arguments for that model and corpus (policy all, 1 thread), without --out.
std::vector<std::string> scale_scan_args(int n_lines);

}  // namespace critdim::test
