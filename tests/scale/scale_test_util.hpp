// Shared by the scale tests: a small synthetic model and a corpus big enough for a few shards;
// reproduce in a reduced setting and the comparison of two results.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace critdim::test {

std::string scale_model();              // synth `tiny`, seed 11
std::string scale_corpus(int n_lines);  // numbered lines of varied text
// `critdim scan` arguments for that model and corpus (policy all, 1 thread), without --out.
std::vector<std::string> scale_scan_args(int n_lines);

// `critdim reproduce` arguments, without --out, for the smallest protocol that still has every
// kind of sharded step: stories260K, 3 subjects x 4 questions, 6 AdvBench prompts in chunks of
// 2, 6 tokens each, and a refusal rule ("." refuses) under which both methods choose a nonzero
// alpha, so the merge computes their evaluation.
std::vector<std::string> reduced_reproduce_args();
// results.json of one process over reduced_reproduce_args() (computed once per test binary).
const nlohmann::json& reduced_reproduce_reference();
// Fails the test at every field where two results.json differ, except the top-level timing
// fields docs/eval.md lists (checked to be eval::reproduce_timing_fields()).
void expect_same_results(const nlohmann::json& one_process, const nlohmann::json& merged);

}  // namespace critdim::test
