// The scan's observer: folds the rows of each hook site into Stats. Work is split over the
// thread pool by dimension (each dimension's sums run over rows in batch order on one thread),
// so the results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "critdim/analysis.hpp"

namespace critdim::analysis {

// One document of the current batch: its slot (= sequence id), its corpus index and its rows.
struct BatchDoc {
    int32_t slot = 0;
    int64_t doc = 0;
    int64_t first_row = 0, n_rows = 0;
};

class Accumulator {
public:
    // sigma_ref: per-dimension mean and std for SigmaAxis::corpus (same sites), else null.
    Accumulator(Stats& stats, const ScanOptions& options, const Stats* sigma_ref, ThreadPool& pool, int max_slots);

    // counted[r]: whether batch row r is counted by the position policy.
    void begin_batch(const std::vector<BatchDoc>& docs, const std::vector<uint8_t>& counted);
    void observe(size_t site, const model::ConstRows& rows);
    void end_batch();

private:
    void rows_phase(const model::ConstRows& rows, int ith, int nth);
    void dims_phase(size_t site, const model::ConstRows& rows, int64_t d0, int64_t d1);
    void row_scales(const model::ConstRows& rows, int ith, int nth);
    void massive_rows(const model::ConstRows& rows, int ith, int nth);

    Stats& st_;
    const ScanOptions& opt_;
    ThreadPool& pool_;
    int64_t E_;
    int max_slots_;
    std::vector<double> ref_lo_, ref_hi_;  // corpus axis: [n_sites * E] mean -/+ k * std

    // Per batch.
    std::vector<BatchDoc> docs_;
    std::vector<int32_t> row_slot_;          // [n_rows] slot of each row
    std::vector<int64_t> row_doc_;           // [n_rows] corpus index of each row's document
    std::vector<int64_t> counted_rows_;      // rows the policy counts, in order
    std::vector<float> center_, threshold_;  // [n_rows] vector axis: mean and k * sigma
    std::vector<float> row_max_, row_median_;  // [n_rows] massive check (median < 0: skip)
    std::vector<uint8_t> site_flags_;        // [max_slots * E] active at this site
    std::vector<uint8_t> any_flags_;         // [n_points * max_slots * E] active at any layer
    std::vector<size_t> site_point_;         // point index of each site
    std::vector<std::vector<float>> scratch_;  // per thread [E]
};

}  // namespace critdim::analysis
