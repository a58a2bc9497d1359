// critdim vector: difference of means, masking to critical dimensions, the norms, PCA of paired
// rows, determinism and the refusals, on stats files written here with known contents.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"
#include "critdim/steer.hpp"
#include "test_util.hpp"

namespace critdim::steer {
namespace {

constexpr int64_t kEmbd = 4;

// Two layers of resid_post; the mean of each (layer, dim) is `mean(layer, dim)` over `count` tokens.
template <class F>
std::string write_stats(const std::string& name, int64_t count, F mean, const std::string& model_hash = "xxh3_64:1") {
    analysis::Stats st;
    st.init({"resid_post.0", "resid_post.1"}, kEmbd);
    st.header.name = name;
    st.header.model_hash = model_hash;
    st.header.model_arch = "llama";
    st.header.n_layer = 2;
    st.header.n_docs = count;
    st.header.policy = "last";
    for (size_t site = 0; site < 2; ++site) {
        st.count[site] = count;
        for (int64_t d = 0; d < kEmbd; ++d)
            st.s.sum[st.at(site, d)] = mean(static_cast<int>(site), d) * static_cast<double>(count);
    }
    const std::string path = critdim::test::temp_dir("vector") + "/" + name + ".stats";
    st.write(path);
    return path;
}

std::string pos_stats() {
    return write_stats("pos", 4,
                       [](int layer, int64_t d) { return layer == 0 ? (d == 1 ? 3.0 : 1.0) : 2.0 * double(d); });
}
std::string neg_stats() {
    return write_stats("neg", 8, [](int, int64_t) { return 1.0; });
}

std::string write_critical(const std::string& body) {
    const std::string path = critdim::test::temp_dir("vector") + "/critical.json";
    std::ofstream(path) << R"({"format": "critdim.critical", "version": 1, "domains": [)" + body + "]}";
    return path;
}

double row_norm(const Values& v, int64_t row) {
    double s = 0;
    for (int64_t i = 0; i < v.n_cols; ++i) s += double(v.row(row)[i]) * v.row(row)[i];
    return std::sqrt(s);
}

TEST(Vector, DifferenceOfMeansPerLayer) {
    VectorOptions o;
    o.pos = pos_stats();
    o.neg = neg_stats();
    const Plan p = build_vector_plan(o);
    ASSERT_EQ(p.interventions.size(), 1u);
    const Intervention& iv = p.interventions[0];
    EXPECT_TRUE(iv.all_dims);
    EXPECT_EQ(iv.op, Op::add);
    EXPECT_EQ(iv.layers, (std::vector<int>{0, 1}));
    ASSERT_EQ(iv.values.n_rows, 2);
    ASSERT_EQ(iv.values.n_cols, kEmbd);
    // layer 0: (1,3,1,1) - 1 = (0,2,0,0); layer 1: (0,2,4,6) - 1
    EXPECT_EQ(std::vector<float>(iv.values.row(0), iv.values.row(0) + 4), (std::vector<float>{0, 2, 0, 0}));
    EXPECT_EQ(std::vector<float>(iv.values.row(1), iv.values.row(1) + 4), (std::vector<float>{-1, 1, 3, 5}));
    EXPECT_EQ(p.model.n_embd, kEmbd);
    EXPECT_EQ(p.model.n_layer, 2);
    EXPECT_EQ(*p.model.arch, "llama");
    // Deterministic, and it survives the round trip through a file.
    EXPECT_EQ(plan_to_json(p), plan_to_json(build_vector_plan(o)));
    const std::string path = critdim::test::temp_dir("vector") + "/plan.json";
    save_plan(p, path);
    EXPECT_EQ(plan_to_json(load_plan(path)).size(), plan_to_json(p).size());
}

TEST(Vector, MaskedToTheCriticalDimsAtTheWholeNorm) {
    VectorOptions o;
    o.pos = pos_stats();
    o.neg = neg_stats();
    o.dims_path = write_critical(R"({"name": "pos", "dims": [{"dim": 3}, {"dim": 2}]})");
    o.layer_first = o.layer_last = 1;
    std::vector<VectorLayer> layers;
    const Plan p = build_vector_plan(o, &layers);
    const Intervention& iv = p.interventions[0];
    EXPECT_FALSE(iv.all_dims);
    EXPECT_EQ(iv.dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(iv.layers, (std::vector<int>{1}));
    const double whole = std::sqrt(1.0 + 1 + 9 + 25), masked = std::sqrt(9.0 + 25);
    ASSERT_EQ(layers.size(), 1u);
    EXPECT_NEAR(layers[0].whole_norm, whole, 1e-12);
    EXPECT_NEAR(layers[0].masked_norm, masked, 1e-12);
    EXPECT_NEAR(row_norm(iv.values, 0), whole, 1e-5);                         // match-whole: equal budget
    EXPECT_NEAR(iv.values.row(0)[1] / iv.values.row(0)[0], 5.0 / 3.0, 1e-6);  // direction kept

    o.norm = VectorNorm::unit;
    EXPECT_NEAR(row_norm(build_vector_plan(o).interventions[0].values, 0), 1.0, 1e-6);
    o.norm = VectorNorm::none;
    EXPECT_NEAR(row_norm(build_vector_plan(o).interventions[0].values, 0), masked, 1e-5);
}

TEST(Vector, PcaOfPairedRowsHasTheMeanDifferenceSign) {
    // Pairs differ by c_k * u with u = (0, 0.6, 0.8, 0), c_k > 0, plus a little noise across pairs.
    auto write_rows = [](const std::string& name, bool positive) {
        analysis::Stats st;
        st.init({"resid_post.0"}, kEmbd);
        st.header.name = name;
        st.header.model_hash = "xxh3_64:1";
        st.header.n_layer = 1;
        st.count[0] = 3;
        const double c[3] = {1.0, 2.0, 3.0};
        for (int k = 0; k < 3; ++k) {
            st.kept_docs.push_back(k);
            for (int64_t d = 0; d < kEmbd; ++d) {
                const double u = d == 1 ? 0.6 : d == 2 ? 0.8 : 0.0;
                const double base = 10.0 * k + double(d);
                st.kept_rows.push_back(static_cast<float>(positive ? base + c[k] * u : base));
            }
        }
        const std::string path = critdim::test::temp_dir("vector") + "/" + name + ".stats";
        st.write(path);
        return path;
    };
    VectorOptions o;
    o.pos = write_rows("pos", true);
    o.neg = write_rows("neg", false);
    o.method = VectorMethod::pca;
    const Plan p = build_vector_plan(o);
    const float* v = p.interventions[0].values.row(0);
    EXPECT_NEAR(v[0], 0.0, 1e-6);
    EXPECT_GT(v[1], 0.0f);
    EXPECT_NEAR(v[2] / v[1], 0.8 / 0.6, 1e-5);
    EXPECT_NEAR(std::hypot(v[1], v[2]), 2.0, 1e-5);  // scaled to the mean projection (mean c = 2)
    // The same signed direction with the mean difference removed first (repeng's centring).
    o.center = true;
    const Plan centred = build_vector_plan(o);
    const float* w = centred.interventions[0].values.row(0);
    EXPECT_GT(w[1], 0.0f);
    EXPECT_NEAR(w[2] / w[1], 0.8 / 0.6, 1e-4);
}

void expect_refused(const VectorOptions& o, ErrorKind kind, const std::string& text) {
    try {
        build_vector_plan(o);
        ADD_FAILURE() << "accepted; expected: " << text;
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
}

TEST(Vector, RefusesWhatItCannotBuild) {
    VectorOptions o;
    o.pos = pos_stats();
    o.neg = write_stats(
        "other", 2, [](int, int64_t) { return 0.0; }, "xxh3_64:2");
    expect_refused(o, ErrorKind::mismatch, "statistics come from different models");
    o.neg = neg_stats();
    o.layer_last = 2;
    expect_refused(o, ErrorKind::usage, "outside the model's 2 layers");
    o.layer_last = -1;
    o.dims_path = write_critical(R"({"name": "a", "dims": [{"dim": 1}]}, {"name": "b", "dims": [{"dim": 2}]})");
    expect_refused(o, ErrorKind::usage, "several domains (a, b); choose one with --domain");
    o.domain = "c";
    expect_refused(o, ErrorKind::usage, "no domain 'c'");
    o.domain = "";
    o.dims_path = write_critical(R"({"name": "pos", "dims": [{"dim": 9}]})");
    expect_refused(o, ErrorKind::mismatch, "domains[0].dims[0].dim: 9 is outside the model's 4 dimensions");
    o.dims_path = write_critical(R"({"name": "pos", "dims": []})");
    expect_refused(o, ErrorKind::input, "has no dimensions");
    o.dims_path.clear();
    o.method = VectorMethod::pca;
    expect_refused(o, ErrorKind::usage, "scan it with --keep-rows");
}

TEST(VectorCli, WritesAPlanAndRefusesBadOptions) {
    const std::string out = critdim::test::temp_dir("vector") + "/cli-plan.json";
    auto r = critdim::test::run_critdim({"vector", "--pos", pos_stats(), "--neg", neg_stats(), "--dim", "1", "--layers",
                                         "0..1", "--norm", "none", "--out", out, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Plan p = load_plan(out);
    EXPECT_EQ(p.interventions[0].dims, (std::vector<int64_t>{1}));
    EXPECT_FLOAT_EQ(p.interventions[0].values.row(0)[0], 2.0f);
    EXPECT_EQ(nlohmann::json::parse(r.out)["layers"].size(), 2u);
    r = critdim::test::run_critdim(
        {"vector", "--pos", pos_stats(), "--neg", neg_stats(), "--layers", "3..1", "--out", out});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--layers: '3..1'"), std::string::npos) << r.err;
    r = critdim::test::run_critdim(
        {"vector", "--pos", pos_stats(), "--neg", neg_stats(), "--norm", "big", "--out", out});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--norm: 'big'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace critdim::steer
