// Plan files: parsing, checks against the model with exact messages, and writing plans back.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "steer/steer_test_util.hpp"
#include "test_util.hpp"

namespace critdim::steer {
namespace {

using test::deep_model;
using test::plan_text;
using test::write_temp;

// The message of the Error that `fn` throws, with its kind checked.
template <class F>
std::string error_of(F&& fn, ErrorKind kind) {
    try {
        fn();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no error thrown";
    return "";
}

// Loads the plan text as a file and compiles it for llama-deep-f32; returns the error message
// with the file's temporary folder removed ("plan.json: ...").
std::string refusal(const std::string& text, ErrorKind kind) {
    const std::string path = write_temp("plan.json", text);
    std::string msg = error_of(
        [&] {
            const Plan plan = load_plan(path);
            Steering s(deep_model(), std::span<const Plan>(&plan, 1));
        },
        kind);
    if (msg.rfind(path, 0) == 0) msg = "plan.json" + msg.substr(path.size());
    return msg;
}

TEST(PlanLoad, ParsesEveryField) {
    const std::string path = write_temp("plan.json", plan_text(R"(
        {"op": "add", "point": "resid_post", "layers": [1, 3], "dims": [3, 17], "values": [[1, 2], [3, 4]],
         "alpha": 0.5, "positions": {"from": 2}, "comment": "two rows"},
        {"op": "clamp", "layers": {"from": 2, "to": 4}, "dims": "all", "max": [1]},
        {"op": "zero", "point": "embed", "dims": [5], "positions": "skip_bos"})",
                                                               R"("model": {"arch": "llama", "n_embd": 64}, "alpha": 2, )"));
    // the clamp row is shorter than n_embd: that is checked against the model, not at parse
    const Plan plan = load_plan(path);
    ASSERT_EQ(plan.interventions.size(), 3u);
    EXPECT_EQ(plan.interventions[0].where, path + ": interventions[0]");
    const Intervention& a = plan.interventions[0];
    EXPECT_EQ(a.op, Op::add);
    EXPECT_EQ(a.layers, (std::vector<int>{1, 3}));
    EXPECT_EQ(a.dims, (std::vector<int64_t>{3, 17}));
    EXPECT_EQ(a.values.n_rows, 2);
    EXPECT_EQ(a.values.row(1)[1], 4.0f);
    EXPECT_EQ(a.positions, (PositionPolicy{Positions::from, 2}));
    EXPECT_EQ(plan.interventions[1].layers, (std::vector<int>{2, 3, 4}));
    EXPECT_EQ(plan.interventions[2].point, model::HookPoint::embed);
    EXPECT_EQ(plan.alpha, 2.0);
    EXPECT_EQ(*plan.model.arch, "llama");
}

TEST(PlanLoad, WriteThenReadKeepsEveryFloatBit) {
    Plan plan;
    plan.source = "mem";
    Intervention iv;
    iv.layers = {2};
    iv.all_dims = false;
    iv.dims = {0, 1, 2, 3, 4, 5};
    iv.values.n_rows = 1;
    iv.values.n_cols = 6;
    iv.values.data = {0.1f, -1e-30f, 3.4e38f, 1.17549435e-38f, -0.0f, 0.333333343f};
    plan.interventions.push_back(iv);
    const Plan back = parse_plan(plan_to_json(plan), "mem", ".");
    ASSERT_EQ(back.interventions[0].values.data.size(), 6u);
    EXPECT_EQ(std::memcmp(back.interventions[0].values.data.data(), iv.values.data.data(), 6 * sizeof(float)), 0);
    EXPECT_EQ(plan_to_json(back), plan_to_json(plan));
}

TEST(PlanLoad, ValuesFromNpyAndGguf) {
    const std::string dir = critdim::test::temp_dir("plan-files");
    const float v[4] = {1, 2, 3, 4};
    const int64_t shape[] = {2, 2};
    write_npy(dir + "/v.npy", v, shape);
    write_file_atomic(dir + "/plan.json", plan_text(R"({"op": "add", "layers": [1, 2], "dims": [0, 9], "values": {"npy": "v.npy"}},
        {"op": "add", "layers": [3, 4], "values": {"gguf": ")" + test::golden_dir() +
                                                           R"(/cvec/llama-deep-dense.gguf", "tensor": "direction.{layer}"}})"));
    const Plan plan = load_plan(dir + "/plan.json");
    EXPECT_EQ(plan.interventions[0].values.row(1)[0], 3.0f);
    EXPECT_EQ(plan.interventions[1].values.n_rows, 2);
    EXPECT_EQ(plan.interventions[1].values.n_cols, 64);
    Steering s(deep_model(), std::span<const Plan>(&plan, 1));
    EXPECT_EQ(s.n_sites(), 4);
}

// Fuzz finding (fuzz_plan): a number beyond double's range made nlohmann throw out_of_range,
// which is not a parse_error, and escaped as an internal error.
TEST(PlanRefuse, NumberBeyondDoubleRangeIsInvalidJson) {
    const std::string msg = refusal(R"({"format": "critdim-steering-plan", "alpha": 66666666666666E6000})", ErrorKind::input);
    EXPECT_EQ(msg.rfind("plan.json: not valid JSON: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("number overflow"), std::string::npos) << msg;
}

TEST(PlanRefuse, LayerOutOfRange) {
    const std::string msg = refusal(plan_text(R"({"op": "zero", "layers": [1]}, {"op": "zero", "layers": [2]},
                                                 {"op": "zero", "layers": [3, 40]})"),
                                    ErrorKind::mismatch);
    EXPECT_EQ(msg, "plan.json: interventions[2].layers: 40 is out of range (model has 6 layers)");
}

TEST(PlanRefuse, WrongEmbeddingWidth) {
    EXPECT_EQ(refusal(plan_text(R"({"op": "add", "layers": [1], "values": [1, 2, 3]})"), ErrorKind::mismatch),
              "plan.json: interventions[0].values: 3 values per row, the model has n_embd 64");
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": [1]})", R"("model": {"n_embd": 4096}, )"),
                      ErrorKind::mismatch),
              "plan.json: model.n_embd: the plan is for n_embd 4096, the model has 64");
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": [1], "dims": [64]})"), ErrorKind::mismatch),
              "plan.json: interventions[0].dims: 64 is out of range (model has n_embd 64)");
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": [1]})", R"("model": {"arch": "gemma2", "n_layer": 6}, )"),
                      ErrorKind::mismatch),
              "plan.json: model.arch: the plan is for 'gemma2', the model is 'llama'");
}

TEST(PlanRefuse, UnknownOperation) {
    EXPECT_EQ(refusal(plan_text(R"({"op": "multiply", "layers": [1]})"), ErrorKind::input),
              "plan.json: interventions[0].op: unknown operation 'multiply' (expected add, set, scale, clamp, zero, mean)");
}

TEST(PlanRefuse, NaNValues) {
    const std::string dir = critdim::test::temp_dir("plan-nan");
    const float v[3] = {1, 2, std::nanf("")};
    const int64_t shape[] = {3};
    write_npy(dir + "/v.npy", v, shape);
    const std::string path = dir + "/plan.json";
    write_file_atomic(path, plan_text(R"({"op": "add", "layers": [1], "dims": [1, 2, 3], "values": {"npy": "v.npy"}})"));
    EXPECT_EQ(error_of([&] { load_plan(path); }, ErrorKind::input),
              path + ": interventions[0].values: element [2] is NaN");
    // JSON has no NaN literal; a string in its place is a type error
    EXPECT_EQ(refusal(plan_text(R"({"op": "add", "layers": [1], "dims": [1], "values": ["NaN"]})"), ErrorKind::input),
              "plan.json: interventions[0].values[0]: expected a number, found a string");
    EXPECT_EQ(refusal(plan_text(R"({"op": "add", "layers": [1], "dims": [1], "values": [1e39]})"), ErrorKind::input),
              "plan.json: interventions[0].values[0]: value 1e+39 is not a finite float32");
}

TEST(PlanRefuse, FieldsOfTheWrongTypeAndUnknownFields) {
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": [1], "alpha": "2"})"), ErrorKind::input),
              "plan.json: interventions[0].alpha: expected a number, found a string");
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": [1], "alhpa": 2})"), ErrorKind::input),
              "plan.json: interventions[0]: unknown field 'alhpa' (expected point, layers, dims, op, values, min, max, alpha, "
                     "positions, beyond_model, comment)");
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": "1"})"), ErrorKind::input),
              "plan.json: interventions[0].layers: expected \"all\", a list of layers or {\"from\": A, \"to\": B}");
    EXPECT_EQ(refusal(R"({"format": "critdim-steering-plan", "version": 2, "interventions": []})", ErrorKind::input),
              "plan.json: version: version 2 is not supported (this critdim reads version 1)");
    EXPECT_EQ(refusal(plan_text(""), ErrorKind::input),
              "plan.json: interventions: no interventions: the plan would do nothing");
    EXPECT_EQ(refusal(plan_text(R"({"op": "add", "layers": [1], "dims": [1, 2], "values": [1]})"), ErrorKind::input),
              "plan.json: interventions[0].values: has 1 values per row for 2 dimensions");
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": [2, 2]})"), ErrorKind::input),
              "plan.json: interventions[0].layers: layer 2 is listed twice");
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": [1], "positions": "later"})"), ErrorKind::input),
              "plan.json: interventions[0].positions: 'later' is not a position policy (expected all, prompt, generated, "
                     "skip_bos or {\"from\": N})");
    EXPECT_EQ(refusal(plan_text(R"({"op": "zero", "layers": [1], "values": [1]})"), ErrorKind::input),
              "plan.json: interventions[0].values: operation zero takes no values");
}

}  // namespace
}  // namespace critdim::steer
