#include "analysis/accumulator.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

namespace critdim::analysis {

namespace {

// Below this much work (elements touched, weighted) a site is folded on the calling thread.
constexpr int64_t kSerialWork = 1 << 19;

// Mean and population std of n floats in float64, four lanes in a fixed order.
void mean_std(const float* x, int64_t n, double& mean, double& std) {
    double s[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; ++l) {
            const double v = x[i + l];
            s[l] += v;
            q[l] += v * v;
        }
    for (; i < n; ++i) s[0] += x[i], q[0] += static_cast<double>(x[i]) * x[i];
    const double sum = (s[0] + s[1]) + (s[2] + s[3]), sq = (q[0] + q[1]) + (q[2] + q[3]);
    mean = sum / static_cast<double>(n);
    std = std::sqrt(std::max(0.0, sq / static_cast<double>(n) - mean * mean));
}

float max_abs(const float* x, int64_t n) {
    float m[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) m[l] = std::max(m[l], std::fabs(x[i + l]));
    for (; i < n; ++i) m[0] = std::max(m[0], std::fabs(x[i]));
    return *std::max_element(m, m + 8);
}

// Median of n values, reordering `v`.
float median(float* v, int64_t n) {
    const int64_t h = n / 2;
    std::nth_element(v, v + h, v + n);
    const float hi = v[h];
    if (n % 2) return hi;
    const float lo = *std::max_element(v, v + h);
    return 0.5f * (lo + hi);
}

}  // namespace

Accumulator::Accumulator(Stats& stats, const ScanOptions& options, const Stats* sigma_ref, ThreadPool& pool,
                         int max_slots)
    : st_(stats), opt_(options), pool_(pool), E_(stats.n_embd()), max_slots_(max_slots) {
    const size_t E = static_cast<size_t>(E_);
    site_flags_.assign(static_cast<size_t>(max_slots) * E, 0);
    any_flags_.assign(st_.points.size() * static_cast<size_t>(max_slots) * E, 0);
    for (const std::string& s : st_.sites) {
        const std::string p = s.substr(0, s.find('.'));
        site_point_.push_back(static_cast<size_t>(std::find(st_.points.begin(), st_.points.end(), p) - st_.points.begin()));
    }
    scratch_.assign(static_cast<size_t>(pool.size()), std::vector<float>(E));
    if (options.sigma_axis == SigmaAxis::corpus) {
        ref_lo_.resize(st_.s.sum.size());
        ref_hi_.resize(st_.s.sum.size());
        for (size_t site = 0; site < st_.sites.size(); ++site) {
            const double n = static_cast<double>(sigma_ref->count[site]);
            for (size_t d = 0; d < E; ++d) {
                const size_t i = site * E + d;
                const double mean = sigma_ref->s.sum[i] / n;
                const double sd = std::sqrt(std::max(0.0, sigma_ref->s.sum_sq[i] / n - mean * mean));
                ref_lo_[i] = mean - options.sigma_k * sd;
                ref_hi_[i] = mean + options.sigma_k * sd;
            }
        }
    }
}

void Accumulator::begin_batch(const std::vector<BatchDoc>& docs, const std::vector<uint8_t>& counted) {
    docs_ = docs;
    const size_t n_rows = counted.size();
    row_slot_.assign(n_rows, 0);
    row_doc_.assign(n_rows, -1);
    for (const BatchDoc& d : docs)
        for (int64_t r = d.first_row; r < d.first_row + d.n_rows; ++r) {
            row_slot_[static_cast<size_t>(r)] = d.slot;
            row_doc_[static_cast<size_t>(r)] = d.doc;
        }
    counted_rows_.clear();
    for (size_t r = 0; r < n_rows; ++r)
        if (counted[r]) counted_rows_.push_back(static_cast<int64_t>(r));
    center_.assign(n_rows, 0.0f);
    threshold_.assign(n_rows, 0.0f);
    row_max_.assign(n_rows, 0.0f);
    row_median_.assign(n_rows, -1.0f);
    std::fill(any_flags_.begin(), any_flags_.end(), 0);
}

// Vector axis: each counted row's centre and k * sigma over its own entries.
void Accumulator::row_scales(const model::ConstRows& rows, int ith, int nth) {
    const auto n = static_cast<int64_t>(counted_rows_.size());
    {
        std::vector<float>& tmp = scratch_[static_cast<size_t>(ith)];
        for (int64_t i = n * ith / nth; i < n * (ith + 1) / nth; ++i) {
            const int64_t r = counted_rows_[static_cast<size_t>(i)];
            const float* x = rows.row(r);
            double c = 0.0, sd = 0.0;
            if (opt_.sigma_axis == SigmaAxis::vector_robust) {
                std::copy(x, x + E_, tmp.begin());
                c = median(tmp.data(), E_);
                for (int64_t d = 0; d < E_; ++d) tmp[static_cast<size_t>(d)] = std::fabs(x[d] - static_cast<float>(c));
                sd = 1.4826 * median(tmp.data(), E_);
            } else {
                mean_std(x, E_, c, sd);
            }
            center_[static_cast<size_t>(r)] = static_cast<float>(c);
            threshold_[static_cast<size_t>(r)] = static_cast<float>(opt_.sigma_k * sd);
        }
    }
}

// Sun et al.: |x| > massive_abs and > massive_ratio x the median |x| of the row. Rows whose max
// |x| stays under the absolute bar need no median, which keeps the check nearly free.
void Accumulator::massive_rows(const model::ConstRows& rows, int ith, int nth) {
    const int64_t n = rows.n_rows;
    const auto bar = static_cast<float>(opt_.massive_abs);
    {
        std::vector<float>& tmp = scratch_[static_cast<size_t>(ith)];
        for (int64_t r = n * ith / nth; r < n * (ith + 1) / nth; ++r) {
            const float* x = rows.row(r);
            row_max_[static_cast<size_t>(r)] = max_abs(x, E_);
            row_median_[static_cast<size_t>(r)] = -1.0f;
            if (row_max_[static_cast<size_t>(r)] <= bar) continue;
            for (int64_t d = 0; d < E_; ++d) tmp[static_cast<size_t>(d)] = std::fabs(x[d]);
            row_median_[static_cast<size_t>(r)] = median(tmp.data(), E_);
        }
    }
}

void Accumulator::observe(size_t site, const model::ConstRows& rows) {
    st_.rows[site] += rows.n_rows;
    st_.count[site] += static_cast<int64_t>(counted_rows_.size());

    // One dispatch per site: each thread takes a share of the rows (per-row scales, massive
    // check), waits for the others, then takes a share of the dimensions. Small batches (the
    // `last` policy) run on the calling thread: waking the pool would cost more.
    const auto n_counted = static_cast<int64_t>(counted_rows_.size());
    const int64_t work = n_counted * E_ * 16 + rows.n_rows * E_;
    if (pool_.size() == 1 || work < kSerialWork) {
        rows_phase(rows, 0, 1);
        dims_phase(site, rows, 0, E_);
        return;
    }
    std::atomic<int> arrived{0};
    pool_.run([&](int ith, int nth) {
        rows_phase(rows, ith, nth);
        arrived.fetch_add(1);
        while (arrived.load() < nth) std::this_thread::yield();
        dims_phase(site, rows, E_ * ith / nth, E_ * (ith + 1) / nth);
    });
}

void Accumulator::rows_phase(const model::ConstRows& rows, int ith, int nth) {
    if (opt_.sigma_axis != SigmaAxis::corpus) row_scales(rows, ith, nth);
    massive_rows(rows, ith, nth);
}

void Accumulator::dims_phase(size_t site, const model::ConstRows& rows, int64_t d0, int64_t d1) {
    const size_t E = static_cast<size_t>(E_);
    SiteStats& s = st_.s;
    const size_t base = site * E;
    const size_t point = site_point_[site];
    const auto bar = static_cast<float>(opt_.massive_abs);
    const auto ratio = static_cast<float>(opt_.massive_ratio);
    {
        const size_t b = static_cast<size_t>(d0), e = static_cast<size_t>(d1);
        double* sum = s.sum.data() + base;
        double* sum_sq = s.sum_sq.data() + base;
        double* sum_abs = s.sum_abs.data() + base;
        double* mx = s.max_abs.data() + base;
        int64_t* act_tok = s.active_tokens.data() + base;
        for (const int64_t r : counted_rows_) {
            const float* x = rows.row(r);
            for (size_t d = b; d < e; ++d) {
                const double v = x[d];
                sum[d] += v;
                sum_sq[d] += v * v;
                sum_abs[d] += std::fabs(v);
            }
            for (size_t d = b; d < e; ++d) {
                const double a = std::fabs(x[d]);
                if (a > mx[d]) {
                    mx[d] = a;
                    s.max_value[base + d] = x[d];
                    s.max_doc[base + d] = row_doc_[static_cast<size_t>(r)];
                    s.max_pos[base + d] = rows.positions[static_cast<size_t>(r)];
                    s.max_token[base + d] = rows.tokens[static_cast<size_t>(r)];
                }
            }
            uint8_t* flags = site_flags_.data() + static_cast<size_t>(row_slot_[static_cast<size_t>(r)]) * E;
            if (opt_.sigma_axis == SigmaAxis::corpus) {
                const double* lo = ref_lo_.data() + base;
                const double* hi = ref_hi_.data() + base;
                for (size_t d = b; d < e; ++d) {
                    const uint8_t on = (x[d] < lo[d]) | (x[d] > hi[d]);
                    act_tok[d] += on;
                    flags[d] |= on;
                }
            } else {
                const float c = center_[static_cast<size_t>(r)], t = threshold_[static_cast<size_t>(r)];
                for (size_t d = b; d < e; ++d) {
                    const uint8_t on = std::fabs(x[d] - c) > t;
                    act_tok[d] += on;
                    flags[d] |= on;
                }
            }
        }
        for (int64_t r = 0; r < rows.n_rows; ++r) {
            if (row_median_[static_cast<size_t>(r)] < 0.0f) continue;
            const float* x = rows.row(r);
            const float bar_r = std::max(bar, ratio * row_median_[static_cast<size_t>(r)]);
            const bool first = rows.positions[static_cast<size_t>(r)] == 0;
            for (size_t d = b; d < e; ++d) {
                if (std::fabs(x[d]) > bar_r) {
                    ++s.massive_tokens[base + d];
                    if (first) ++s.massive_first[base + d];
                }
            }
        }
        // Per document: active at this site, and at any layer of the point.
        for (const BatchDoc& doc : docs_) {
            uint8_t* flags = site_flags_.data() + static_cast<size_t>(doc.slot) * E;
            uint8_t* any = any_flags_.data() + (point * static_cast<size_t>(max_slots_) + static_cast<size_t>(doc.slot)) * E;
            int64_t* act_doc = s.active_docs.data() + base;
            for (size_t d = b; d < e; ++d) {
                act_doc[d] += flags[d];
                any[d] |= flags[d];
                flags[d] = 0;
            }
        }
    }
}

void Accumulator::end_batch() {
    const size_t E = static_cast<size_t>(E_);
    for (size_t p = 0; p < st_.points.size(); ++p)
        for (const BatchDoc& doc : docs_) {
            const uint8_t* any = any_flags_.data() + (p * static_cast<size_t>(max_slots_) + static_cast<size_t>(doc.slot)) * E;
            int64_t* dst = st_.active_any.data() + p * E;
            for (size_t d = 0; d < E; ++d) dst[d] += any[d];
        }
}

}  // namespace critdim::analysis
