// Plans applied as interventions: each operation's arithmetic at its site, alpha, position
// policies (generated-only leaves the prompt bit-identical), composition in order.
#include <gtest/gtest.h>

#include <cstring>

#include "steer/steer_test_util.hpp"

namespace critdim::steer {
namespace {

using test::deep_model;
using test::deep_prompt;
using test::plan_text;
using test::run;

Plan plan_of(const std::string& interventions, const std::string& extra = "") {
    return parse_plan(plan_text(interventions, extra), "plan.json", ".");
}

const test::Run& base_run() {
    static const test::Run r = run(deep_model(), deep_prompt(), nullptr);
    return r;
}

// resid_post[layer][token][dim]
float resid(const test::Run& r, int layer, int64_t token, int64_t dim) {
    const int64_t T = static_cast<int64_t>(deep_prompt().size());
    return r.resid_post[static_cast<size_t>((layer * T + token) * 64 + dim)];
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(SteerApply, EachOperationAtItsSite) {
    struct Case {
        const char* json;
        float (*expect)(float x);  // dim 5 of resid_post.3 (dim 6 must be unchanged)
    };
    const Case cases[] = {
        {R"({"op": "add", "layers": [3], "dims": [5], "values": [1.5]})", [](float x) { return x + 1.5f; }},
        {R"({"op": "add", "layers": [3], "dims": [5], "values": [1.5], "alpha": -2})", [](float x) { return x + -3.0f; }},
        {R"({"op": "set", "layers": [3], "dims": [5], "values": [7]})", [](float) { return 7.0f; }},
        {R"({"op": "mean", "layers": [3], "dims": [5], "values": [0.25]})", [](float) { return 0.25f; }},
        {R"({"op": "set", "layers": [3], "dims": [5], "values": [7], "alpha": 0.5})",
         [](float x) { return 0.5f * x + 0.5f * 7.0f; }},
        {R"({"op": "scale", "layers": [3], "dims": [5], "values": [3]})", [](float x) { return x * 3.0f; }},
        {R"({"op": "zero", "layers": [3], "dims": [5]})", [](float) { return 0.0f; }},
        {R"({"op": "clamp", "layers": [3], "dims": [5], "min": [100]})", [](float) { return 100.0f; }},
        {R"({"op": "clamp", "layers": [3], "dims": [5], "max": [-100]})", [](float) { return -100.0f; }},
    };
    for (const Case& c : cases) {
        const Plan plan = plan_of(c.json);
        Steering s(deep_model(), std::span<const Plan>(&plan, 1));
        const test::Run r = run(deep_model(), deep_prompt(), &s);
        for (int l = 0; l < 3; ++l)
            ASSERT_EQ(std::memcmp(&r.resid_post[static_cast<size_t>(l * 16 * 64)],
                                  &base_run().resid_post[static_cast<size_t>(l * 16 * 64)], 16 * 64 * 4),
                      0)
                << c.json << ": layer " << l << " changed";
        for (int64_t t = 0; t < 16; ++t) {
            EXPECT_EQ(resid(r, 3, t, 5), c.expect(resid(base_run(), 3, t, 5))) << c.json << " token " << t;
            EXPECT_EQ(resid(r, 3, t, 6), resid(base_run(), 3, t, 6)) << c.json << " token " << t;
        }
    }
}

TEST(SteerApply, AlphaZeroChangesNothing) {
    for (const char* op : {R"("add", "values": "V")", R"("set", "values": "V")", R"("scale", "values": "V")", R"("zero")",
                           R"("clamp", "min": "V")"}) {
        std::string json = std::string(R"({"layers": "all", "dims": "all", "alpha": 0, "op": )") + op + "}";
        std::string ones = "[";
        for (int i = 0; i < 64; ++i) ones += (i ? ", " : "") + std::to_string(i % 5 + 1);
        ones += "]";
        if (const size_t at = json.find("\"V\""); at != std::string::npos) json.replace(at, 3, ones);
        const Plan plan = plan_of(json);
        Steering s(deep_model(), std::span<const Plan>(&plan, 1));
        const test::Run r = run(deep_model(), deep_prompt(), &s);
        EXPECT_TRUE(same_bits(r.logits, base_run().logits)) << op;
    }
}

TEST(SteerApply, CliAlphaReplacesThePlanAlpha) {
    const Plan twice = plan_of(R"({"op": "add", "layers": [2], "dims": [1], "values": [1], "alpha": 3})", R"("alpha": 2, )");
    Steering s(deep_model(), std::span<const Plan>(&twice, 1), Steering::Options{0.5});
    const test::Run r = run(deep_model(), deep_prompt(), &s);
    EXPECT_EQ(resid(r, 2, 4, 1), resid(base_run(), 2, 4, 1) + 1.5f);
}

TEST(SteerApply, PositionPolicies) {
    const char* base = R"({"op": "add", "layers": [2], "dims": [0], "values": [10], "positions": )";
    struct Case {
        const char* policy;
        bool (*steered)(int64_t pos);
    };
    const Case cases[] = {{R"("all")", [](int64_t) { return true; }},
                          {R"("skip_bos")", [](int64_t p) { return p != 0; }},
                          {R"({"from": 5})", [](int64_t p) { return p >= 5; }},
                          {R"("prompt")", [](int64_t p) { return p < 7; }},
                          {R"("generated")", [](int64_t p) { return p >= 7; }}};
    for (const Case& c : cases) {
        const Plan plan = plan_of(std::string(base) + c.policy + "}");
        Steering s(deep_model(), std::span<const Plan>(&plan, 1));
        s.set_prompt_length(0, 7);
        const test::Run r = run(deep_model(), deep_prompt(), &s);
        for (int64_t t = 0; t < 16; ++t) {
            const float x = resid(base_run(), 2, t, 0);
            EXPECT_EQ(resid(r, 2, t, 0), c.steered(t) ? x + 10.0f : x) << c.policy << " position " << t;
        }
    }
}

TEST(SteerApply, PromptLengthUnknownMeansEveryRowIsPrompt) {
    const Plan gen = plan_of(R"({"op": "add", "layers": [2], "values": [1], "dims": [0], "positions": "generated"})");
    Steering s(deep_model(), std::span<const Plan>(&gen, 1));
    EXPECT_TRUE(same_bits(run(deep_model(), deep_prompt(), &s).logits, base_run().logits));
}

// Generation through the KV cache: a generated-only plan leaves every prompt logit
// bit-identical and changes the generated ones.
TEST(SteerApply, GeneratedOnlyLeavesPromptLogitsBitIdentical) {
    const Plan plan = plan_of(R"({"op": "add", "layers": "all", "dims": "all", "positions": "generated", "values": [)" +
                              [] {
                                  std::string v;
                                  for (int i = 0; i < 64; ++i) v += (i ? "," : "") + std::to_string((i % 7) - 3);
                                  return v;
                              }() + "]}");
    const model::Model& m = deep_model();
    const int64_t V = m.hparams().n_vocab;
    auto generate = [&](Steering* s) {
        model::ContextParams cp;
        cp.n_ctx = 64;
        cp.n_threads = 2;
        model::Context ctx(m, cp);
        if (s) {
            s->attach(ctx);
            s->set_prompt_length(0, static_cast<int64_t>(deep_prompt().size()));
        }
        ctx.decode(deep_prompt(), true);
        std::vector<float> prompt_logits(ctx.logits(0), ctx.logits(0) + 16 * V);
        std::vector<float> gen_logits;
        int32_t tok = model::Sampler::argmax(ctx.logits(15), V);
        for (int i = 0; i < 4; ++i) {
            ctx.decode(std::span<const int32_t>(&tok, 1), false);
            gen_logits.insert(gen_logits.end(), ctx.logits(0), ctx.logits(0) + V);
            tok = model::Sampler::argmax(ctx.logits(0), V);
        }
        return std::make_pair(prompt_logits, gen_logits);
    };
    Steering s(m, std::span<const Plan>(&plan, 1));
    const auto base = generate(nullptr);
    const auto steered = generate(&s);
    EXPECT_TRUE(same_bits(steered.first, base.first));
    EXPECT_FALSE(same_bits(steered.second, base.second));
}

TEST(SteerApply, PlansComposeInOrder) {
    const Plan set = plan_of(R"({"op": "set", "layers": [1], "dims": [3], "values": [2]})");
    const Plan add = plan_of(R"({"op": "add", "layers": [1], "dims": [3], "values": [5]})");
    {
        const Plan plans[] = {set, add};
        Steering s(deep_model(), plans);
        EXPECT_EQ(resid(run(deep_model(), deep_prompt(), &s), 1, 9, 3), 7.0f);
    }
    {
        const Plan plans[] = {add, set};
        Steering s(deep_model(), plans);
        EXPECT_EQ(resid(run(deep_model(), deep_prompt(), &s), 1, 9, 3), 2.0f);
    }
}

// Consecutive adds at one site are summed first (as llama.cpp sums directions of a block):
// one precomputed vector per site.
TEST(SteerApply, AddsAtOneSiteBecomeOneVector) {
    const Plan a = plan_of(R"({"op": "add", "layers": [1, 2], "dims": [3], "values": [2]},
                              {"op": "add", "layers": [2], "dims": [4], "values": [1]})");
    const Plan b = plan_of(R"({"op": "add", "layers": [2], "dims": "all", "values": [)" + std::string("1") +
                           [] {
                               std::string v;
                               for (int i = 1; i < 64; ++i) v += ",0.5";
                               return v;
                           }() + "]}");
    const Plan plans[] = {a, b};
    Steering s(deep_model(), plans);
    EXPECT_EQ(s.describe(), (std::vector<std::string>{"resid_post.1: add dims 1 positions all",
                                                      "resid_post.2: add dims all positions all"}));
}

TEST(SteerApply, DetachRestoresTheModel) {
    const Plan plan = plan_of(R"({"op": "zero", "layers": "all"})");
    Steering s(deep_model(), std::span<const Plan>(&plan, 1));
    model::ContextParams cp;
    cp.n_ctx = 64;
    cp.n_threads = 2;
    model::Context ctx(deep_model(), cp);
    s.attach(ctx);
    s.detach(ctx);
    EXPECT_TRUE(ctx.hooks().empty());
}

// Two sequences in one batch, each with its own plan restricted to its rows: each sequence's
// logits are bit-identical to running it alone with its plan (what critdim serve relies on).
TEST(SteerApply, SequencesKeepTheirOwnPlanInOneBatch) {
    const Plan plan_a = plan_of(R"({"op": "add", "layers": "all", "dims": [1, 5], "values": [4.0, -3.0]})");
    const Plan zero = plan_of(R"({"op": "zero", "layers": [1], "dims": [7, 9]})");
    const std::vector<int32_t>& prompt = deep_prompt();
    const auto T = static_cast<int64_t>(prompt.size());
    const int64_t n_vocab = deep_model().hparams().n_vocab;
    Steering alone_a(deep_model(), std::span<const Plan>(&plan_a, 1));
    Steering alone_z(deep_model(), std::span<const Plan>(&zero, 1));
    const test::Run ra = run(deep_model(), prompt, &alone_a);
    const test::Run rz = run(deep_model(), prompt, &alone_z);
    ASSERT_FALSE(same_bits(ra.logits, base_run().logits));

    model::ContextParams cp;
    cp.n_ctx = 64;
    cp.n_batch = 3 * T;
    cp.n_seq = 3;
    cp.n_threads = 2;
    model::Context ctx(deep_model(), cp);
    Steering sa(deep_model(), std::span<const Plan>(&plan_a, 1));
    Steering sz(deep_model(), std::span<const Plan>(&zero, 1));
    sa.set_sequences({0});
    sz.set_sequences({2});
    sa.attach(ctx);
    sz.attach(ctx);
    model::Batch b;  // rows interleaved across the three sequences
    for (int64_t t = 0; t < T; ++t)
        for (int32_t seq = 0; seq < 3; ++seq) b.add(prompt[static_cast<size_t>(t)], static_cast<int32_t>(t), seq, true);
    ctx.decode(b);
    const test::Run* expect[3] = {&ra, &base_run(), &rz};
    for (int64_t t = 0; t < T; ++t)
        for (int seq = 0; seq < 3; ++seq)
            ASSERT_EQ(std::memcmp(ctx.logits(t * 3 + seq), expect[seq]->logits.data() + t * n_vocab,
                                  static_cast<size_t>(n_vocab) * 4),
                      0)
                << "sequence " << seq << " token " << t;
}

}  // namespace
}  // namespace critdim::steer
