// Comparing two stats files: every count and extreme exactly, the float64 sums exactly or up
// to the documented summation order (docs/formats.md).
#pragma once

#include "critdim/analysis.hpp"

namespace critdim::test {

void expect_same_stats(const analysis::Stats& a, const analysis::Stats& b, bool exact_sums);

}  // namespace critdim::test
