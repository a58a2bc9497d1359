#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "critdim/model.hpp"
#include "test_util.hpp"

namespace critdim::model {
namespace {

std::unique_ptr<Model> stories() { return Model::load(test::shared_dir() + "/golden/models/stories260K-f32.gguf"); }

TEST(HookSite, ParsesAndNames) {
    EXPECT_EQ(HookSite::parse("resid_post.3").name(), "resid_post.3");
    EXPECT_EQ(HookSite::parse("embed").point, HookPoint::embed);
    EXPECT_EQ(HookSite::parse("final_norm").layer, -1);
    for (const char* bad : {"resid_post", "resid_post.x", "embed.1", "foo.1", "resid_post.-1", ""})
        EXPECT_THROW(HookSite::parse(bad), Error) << bad;
}

TEST(Hooks, ObserversSeeEverySiteInOrder) {
    auto m = stories();
    Context ctx(*m, {.n_ctx = 16, .n_batch = 16, .n_seq = 1, .n_threads = 1});
    std::vector<std::string> seen;
    for (HookPoint p : {HookPoint::embed, HookPoint::resid_pre, HookPoint::attn_out, HookPoint::mlp_out,
                        HookPoint::resid_post, HookPoint::final_norm})
        ctx.hooks().observe_all_layers(p, [&](const ConstRows& r) {
            EXPECT_EQ(r.n_rows, 3);
            EXPECT_EQ(r.n_embd, 64);
            EXPECT_EQ(r.positions[2], 2);
            EXPECT_EQ(r.tokens[1], 403);
            seen.push_back(r.site.name());
        });
    const int32_t ids[] = {1, 403, 407};
    ctx.decode(ids, false);
    ASSERT_EQ(seen.size(), 2u + 4u * 5u);
    EXPECT_EQ(seen[0], "embed");
    EXPECT_EQ(seen[1], "resid_pre.0");
    EXPECT_EQ(seen[2], "attn_out.0");
    EXPECT_EQ(seen[3], "mlp_out.0");
    EXPECT_EQ(seen[4], "resid_post.0");
    EXPECT_EQ(seen.back(), "final_norm");
}

TEST(Hooks, ResidualIsEmbedPlusSublayerOutputs) {
    // resid_post.L == resid_pre.L + attn_out.L + mlp_out.L, and resid_pre.(L+1) == resid_post.L.
    auto m = stories();
    Context ctx(*m, {.n_ctx = 16, .n_batch = 16, .n_seq = 1, .n_threads = 2});
    std::map<std::string, std::vector<float>> got;
    for (HookPoint p : {HookPoint::resid_pre, HookPoint::attn_out, HookPoint::mlp_out, HookPoint::resid_post})
        ctx.hooks().observe_all_layers(
            p, [&](const ConstRows& r) { got[r.site.name()].assign(r.data, r.data + r.n_rows * r.n_embd); });
    const int32_t ids[] = {1, 403, 407, 261};
    ctx.decode(ids, false);
    for (int l = 0; l < 5; ++l) {
        const auto& pre = got["resid_pre." + std::to_string(l)];
        const auto& a = got["attn_out." + std::to_string(l)];
        const auto& f = got["mlp_out." + std::to_string(l)];
        const auto& post = got["resid_post." + std::to_string(l)];
        for (size_t i = 0; i < post.size(); ++i) EXPECT_NEAR(pre[i] + a[i] + f[i], post[i], 1e-5f);
        if (l + 1 < 5) {
            EXPECT_EQ(got["resid_pre." + std::to_string(l + 1)], post);
        }
    }
}

TEST(Hooks, InterventionChangesDownstreamAndRunsBeforeObservers) {
    auto m = stories();
    const int32_t ids[] = {1, 403, 407, 261, 378};
    Context base(*m, {.n_ctx = 16, .n_batch = 16, .n_seq = 1, .n_threads = 1});
    base.decode(ids, false);
    std::vector<float> base_logits(base.logits(0), base.logits(0) + 512);

    Context ctx(*m, {.n_ctx = 16, .n_batch = 16, .n_seq = 1, .n_threads = 1});
    float observed = 0;
    ctx.hooks().observe(HookSite{HookPoint::resid_post, 2}, [&](const ConstRows& r) { observed = r.row(4)[7]; });
    float before = 0;
    ctx.hooks().intervene(HookSite{HookPoint::resid_post, 2}, [&](const Rows& r) {
        before = r.row(4)[7];
        for (int64_t i = 0; i < r.n_rows; ++i) r.row(i)[7] += 10.0f;
    });
    ctx.decode(ids, false);
    EXPECT_FLOAT_EQ(observed, before + 10.0f);
    float max_change = 0;
    for (int i = 0; i < 512; ++i) max_change = std::max(max_change, std::fabs(ctx.logits(0)[i] - base_logits[i]));
    EXPECT_GT(max_change, 1e-3f);

    // Removing the hooks restores the unsteered result exactly.
    ctx.hooks().clear();
    ctx.clear();
    ctx.decode(ids, false);
    for (int i = 0; i < 512; ++i) EXPECT_EQ(ctx.logits(0)[i], base_logits[i]);
}

TEST(Hooks, LayerOutOfRangeIsAMismatch) {
    auto m = stories();
    Context ctx(*m, {.n_ctx = 16, .n_batch = 16, .n_seq = 1, .n_threads = 1});
    try {
        ctx.hooks().observe(HookSite{HookPoint::resid_post, 5}, [](const ConstRows&) {});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::mismatch);
        EXPECT_NE(std::string(e.what()).find("out of range (model has 5 layers)"), std::string::npos);
    }
}

TEST(Context, ResultsDoNotDependOnThreadsOrBatchSplits) {
    auto m = stories();
    const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 11, 99, 300, 17, 5};
    std::vector<float> ref;
    for (int threads : {1, 2, 3}) {
        for (int64_t n_batch : {10, 3, 1}) {
            Context ctx(*m, {.n_ctx = 32, .n_batch = n_batch, .n_seq = 1, .n_threads = threads});
            ctx.decode(ids, true);
            std::vector<float> all;
            for (int64_t i = 0; i < 10; ++i) all.insert(all.end(), ctx.logits(i), ctx.logits(i) + 512);
            if (ref.empty())
                ref = all;
            else
                EXPECT_EQ(all, ref) << threads << " threads, batch " << n_batch;
        }
    }
}

TEST(Context, SequencesAreIndependent) {
    auto m = stories();
    const std::vector<int32_t> a = {1, 403, 407, 261}, b = {1, 300, 17};
    Context solo(*m, {.n_ctx = 16, .n_batch = 16, .n_seq = 1, .n_threads = 1});
    solo.decode(b, false);
    std::vector<float> ref(solo.logits(0), solo.logits(0) + 512);

    Context multi(*m, {.n_ctx = 16, .n_batch = 16, .n_seq = 2, .n_threads = 2});
    Batch batch;
    for (size_t i = 0; i < a.size(); ++i) batch.add(a[i], static_cast<int32_t>(i), 0, false);
    for (size_t i = 0; i < b.size(); ++i) batch.add(b[i], static_cast<int32_t>(i), 1, i + 1 == b.size());
    multi.decode(batch);
    for (int i = 0; i < 512; ++i) EXPECT_NEAR(multi.logits(0)[i], ref[i], 1e-5f);
    EXPECT_EQ(multi.seq_length(0), 4);
    EXPECT_EQ(multi.seq_length(1), 3);
}

TEST(Context, BadTokensAndPositionsAreErrors) {
    auto m = stories();
    Context ctx(*m, {.n_ctx = 4, .n_batch = 4, .n_seq = 1, .n_threads = 1});
    const int32_t bad_token[] = {1, 512};
    EXPECT_THROW(ctx.decode(bad_token, false), Error);
    const int32_t too_long[] = {1, 2, 3, 4, 5};
    EXPECT_THROW(ctx.decode(too_long, false), Error);
}

TEST(Sampler, GreedyTiesGoToLowerIdAndSeededSamplingRepeats) {
    const float logits[] = {1.0f, 3.0f, 3.0f, -1.0f};
    EXPECT_EQ(Sampler::argmax(logits, 4), 1);
    std::vector<float> many(100);
    for (int i = 0; i < 100; ++i) many[i] = std::sin(static_cast<float>(i));
    auto draw = [&](uint64_t seed) {
        Sampler s({.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = seed});
        std::vector<int32_t> out;
        for (int i = 0; i < 50; ++i) out.push_back(s.sample(many.data(), 100));
        return out;
    };
    EXPECT_EQ(draw(7), draw(7));
    EXPECT_NE(draw(7), draw(8));
    Sampler k1({.temperature = 1.0f, .top_k = 1, .top_p = 1.0f, .seed = 3});
    for (int i = 0; i < 10; ++i) EXPECT_EQ(k1.sample(many.data(), 100), Sampler::argmax(many.data(), 100));
}

}  // namespace
}  // namespace critdim::model
