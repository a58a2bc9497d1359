#include "analysis/stats_compare.hpp"

#include <gtest/gtest.h>

namespace critdim::test {

void expect_same_stats(const analysis::Stats& a, const analysis::Stats& b, bool exact_sums) {
    ASSERT_EQ(a.sites, b.sites);
    EXPECT_EQ(a.header.n_docs, b.header.n_docs);
    EXPECT_EQ(a.header.n_tokens, b.header.n_tokens);
    EXPECT_EQ(a.count, b.count);
    EXPECT_EQ(a.rows, b.rows);
    EXPECT_EQ(a.s.max_abs, b.s.max_abs);
    EXPECT_EQ(a.s.max_value, b.s.max_value);
    EXPECT_EQ(a.s.max_doc, b.s.max_doc);
    EXPECT_EQ(a.s.max_pos, b.s.max_pos);
    EXPECT_EQ(a.s.max_token, b.s.max_token);
    EXPECT_EQ(a.s.active_docs, b.s.active_docs);
    EXPECT_EQ(a.s.active_tokens, b.s.active_tokens);
    EXPECT_EQ(a.s.massive_tokens, b.s.massive_tokens);
    EXPECT_EQ(a.s.massive_first, b.s.massive_first);
    EXPECT_EQ(a.active_any, b.active_any);
    if (exact_sums) {
        EXPECT_EQ(a.s.sum, b.s.sum);
        EXPECT_EQ(a.s.sum_sq, b.s.sum_sq);
        EXPECT_EQ(a.s.sum_abs, b.s.sum_abs);
        return;
    }
    for (size_t i = 0; i < a.s.sum.size(); ++i) {
        EXPECT_NEAR(a.s.sum[i], b.s.sum[i], 1e-12 * (1 + a.s.sum_abs[i])) << i;
        EXPECT_NEAR(a.s.sum_sq[i], b.s.sum_sq[i], 1e-12 * (1 + a.s.sum_sq[i])) << i;
        EXPECT_NEAR(a.s.sum_abs[i], b.s.sum_abs[i], 1e-12 * (1 + a.s.sum_abs[i])) << i;
    }
}

}  // namespace critdim::test
