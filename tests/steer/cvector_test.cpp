// llama.cpp control vectors: every cvec-* golden case reproduced by importing its control
// vector (with the case's scale and layer range) and running the model; export then import
// is exact; direction.0 and what a control vector cannot express are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "critdim/gguf.hpp"
#include "steer/steer_test_util.hpp"
#include "test_util.hpp"

namespace critdim::steer {
namespace {

using nlohmann::json;
using test::golden_dir;

const json& manifest() {
    static const json m = [] {
        std::ifstream f(golden_dir() + "/MANIFEST.json");
        return json::parse(f);
    }();
    return m;
}

struct CvecCase {
    json spec;
};
void PrintTo(const CvecCase& c, std::ostream* os) { *os << c.spec["id"].get<std::string>(); }

std::vector<CvecCase> cvec_cases() {
    std::vector<CvecCase> out;
    for (const json& c : manifest()["cases"])
        if (!c["control_vector"].is_null()) out.push_back({c});
    return out;
}

// Worst excess of |a - b| over atol (rtol is 0 in every case; checked).
double worst_excess(const float* a, const float* b, int64_t n, double atol, double rtol, double* max_abs) {
    double worst = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
        const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
        *max_abs = std::max(*max_abs, d);
        worst = std::isnan(d) ? INFINITY : std::max(worst, d - (atol + rtol * std::fabs(b[i])));
    }
    return worst;
}

Plan import_case(const json& c) {
    const json& cv = c["control_vector"];
    CvectorImportOptions o;
    o.scale = cv["scale"].get<double>();
    if (!cv["layer_range"].is_null()) {
        o.layer_start = cv["layer_range"][0].get<int64_t>();
        o.layer_end = cv["layer_range"][1].get<int64_t>();
    }
    return import_cvector(golden_dir() + "/" + cv["file"].get<std::string>(), o);
}

class CvectorGolden : public ::testing::TestWithParam<CvecCase> {};

TEST_P(CvectorGolden, ImportedVectorReproducesLlamaCpp) {
    const json& c = GetParam().spec;
    auto model = model::Model::load(golden_dir() + "/" + c["model"].get<std::string>());
    const model::HParams& hp = model->hparams();
    const Plan plan = import_case(c);
    Steering steering(*model, std::span<const Plan>(&plan, 1));
    const std::vector<int32_t> prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const auto T = static_cast<int64_t>(prompt.size());
    const int n_gen = c["greedy"]["n_gen"].get<int>();

    model::ContextParams cp;
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_threads = 2;
    model::Context ctx(*model, cp);
    steering.attach(ctx);
    std::vector<float> resid(static_cast<size_t>(hp.n_layer * T * hp.n_embd));
    const auto observers = ctx.hooks().observe_all_layers(model::HookPoint::resid_post, [&](const model::ConstRows& rows) {
        std::copy(rows.data, rows.data + rows.n_rows * rows.n_embd, resid.begin() + rows.site.layer * T * hp.n_embd);
    });
    ctx.decode(prompt, true);
    for (model::HookId id : observers) ctx.hooks().remove(id);

    const json& tol = c["tolerance"];
    const NpyArray logits = read_npy(golden_dir() + "/" + c["files"]["logits"]["path"].get<std::string>());
    ASSERT_EQ(logits.size(), T * hp.n_vocab);
    for (int64_t t = 0; t < T; ++t) {
        double max_abs = 0;
        EXPECT_LE(worst_excess(ctx.logits(t), logits.data.data() + t * hp.n_vocab, hp.n_vocab,
                               tol["logits"]["atol"].get<double>(), tol["logits"]["rtol"].get<double>(), &max_abs),
                  0.0)
            << "logits row " << t << ": max |diff| " << max_abs;
    }
    const NpyArray golden_resid = read_npy(golden_dir() + "/" + c["files"]["resid_post"]["path"].get<std::string>());
    ASSERT_EQ(golden_resid.size(), static_cast<int64_t>(resid.size()));
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const double atol = tol["resid_post"]["atol_per_layer"][l].get<double>();
        const int64_t n = T * hp.n_embd;
        double max_abs = 0;
        EXPECT_LE(worst_excess(resid.data() + l * n, golden_resid.data.data() + l * n, n, atol,
                               tol["resid_post"]["rtol"].get<double>(), &max_abs),
                  0.0)
            << "resid_post." << l << ": max |diff| " << max_abs << " (atol " << atol << ")";
    }
    // greedy: fed llama.cpp's tokens; argmax must agree up to the first step whose margin is
    // within 2 x atol (golden/README.md, "Greedy continuations")
    const NpyArray gen = read_npy(golden_dir() + "/" + c["files"]["gen_logits"]["path"].get<std::string>());
    const auto tokens = c["greedy"]["tokens"].get<std::vector<int32_t>>();
    const auto margins = c["greedy"]["margins"].get<std::vector<double>>();
    const double atol = tol["gen_logits"]["atol"].get<double>(), rtol = tol["gen_logits"]["rtol"].get<double>();
    std::vector<float> row(ctx.logits(T - 1), ctx.logits(T - 1) + hp.n_vocab);
    bool comparable = true;
    for (int i = 0; i < n_gen; ++i) {
        double max_abs = 0;
        EXPECT_LE(worst_excess(row.data(), gen.data.data() + i * hp.n_vocab, hp.n_vocab, atol, rtol, &max_abs), 0.0)
            << "gen_logits row " << i << ": max |diff| " << max_abs;
        comparable = comparable && margins[static_cast<size_t>(i)] >= 2 * atol;
        if (comparable) {
            ASSERT_EQ(model::Sampler::argmax(row.data(), hp.n_vocab), tokens[static_cast<size_t>(i)]) << "step " << i;
        }
        ctx.decode(std::span<const int32_t>(&tokens[static_cast<size_t>(i)], 1), false);
        row.assign(ctx.logits(0), ctx.logits(0) + hp.n_vocab);
    }
}

INSTANTIATE_TEST_SUITE_P(CvectorCases, CvectorGolden, ::testing::ValuesIn(cvec_cases()),
                         [](const ::testing::TestParamInfo<CvecCase>& info) {
                             std::string name = info.param.spec["id"].get<std::string>();
                             for (char& ch : name)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return name;
                         });

TEST(CvectorGoldenSet, AllTwelveCasesArePresent) { EXPECT_EQ(cvec_cases().size(), 12u); }

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(CvectorImport, DirectionZeroIsRefused) {
    const std::string path = golden_dir() + "/cvec/llama-deep-with-direction0.gguf";
    EXPECT_EQ(error_of([&] { import_cvector(path); }),
              path + ": tensor 'direction.0': block 0 cannot be steered: llama.cpp refuses a control vector with "
                     "direction.0 (\"invalid (zero) direction tensor layer index\")");
}

TEST(CvectorImport, LayerRangeAndScaleFollowLlamaCpp) {
    const std::string path = golden_dir() + "/cvec/llama-deep-dense.gguf";
    CvectorImportOptions o;
    o.scale = 4.0;
    o.layer_start = -3;  // <= 0 counts as 1
    o.layer_end = 2;
    const Plan plan = import_cvector(path, o);
    ASSERT_EQ(plan.interventions.size(), 2u);
    EXPECT_EQ(plan.interventions[0].layers, std::vector<int>{1});
    EXPECT_EQ(plan.interventions[1].layers, std::vector<int>{2});
    EXPECT_EQ(plan.interventions[0].alpha, 4.0);
    o.layer_start = 7;
    o.layer_end = 9;
    EXPECT_EQ(error_of([&] { import_cvector(path, o); }),
              path + ": the layer range 7..9 keeps none of the directions (1, 2, 3, 4, 5)");
}

TEST(CvectorImport, DirectionsBeyondTheModelAreIgnored) {
    const Plan plan = import_cvector(golden_dir() + "/cvec/llama-deep-single-6.gguf");
    Steering s(test::deep_model(), std::span<const Plan>(&plan, 1));
    EXPECT_EQ(s.n_sites(), 0);
    ASSERT_EQ(s.notes().size(), 1u);
}

TEST(CvectorImport, SeveralFilesAreSummedWithTheirScales) {
    // two control vectors for block 1 (a GGUF cannot hold one tensor name twice)
    const std::string dir = critdim::test::temp_dir("cvec-sum");
    std::vector<float> a(64), b(64);
    for (size_t i = 0; i < 64; ++i) a[i] = 0.1f * static_cast<float>(i), b[i] = 1.0f / static_cast<float>(i + 3);
    for (const auto& [name, v] : {std::pair{"a.gguf", &a}, std::pair{"b.gguf", &b}}) {
        gguf::Writer w;
        w.set("general.architecture", gguf::Value::str("controlvector"));
        w.add_tensor("direction.1", TensorType::F32, {64}, v->data(), 256);
        w.write(dir + "/" + name);
    }
    const CvectorFile files[] = {{dir + "/a.gguf", 0.7}, {dir + "/b.gguf", -1.3}};
    const Plan plan = import_cvectors(files, 0, 0);
    ASSERT_EQ(plan.interventions.size(), 2u);
    const CvectorExport cv = plan_to_cvector(plan, nullptr);
    ASSERT_EQ(cv.directions.size(), 1u);
    for (size_t j = 0; j < 64; ++j) {
        float expect = 0.0f;  // llama.cpp: dst[j] += src[j] * strength, files in order
        expect += a[j] * 0.7f;
        expect += b[j] * -1.3f;
        EXPECT_EQ(cv.directions[0].second[j], expect) << j;
    }
}

TEST(CvectorRoundTrip, ExportThenImportIsExact) {
    // golden file -> plan -> file: the same tensors, bit for bit
    const std::string dir = critdim::test::temp_dir("cvec-rt");
    const std::string src = golden_dir() + "/cvec/llama-deep-dense.gguf";
    const Plan plan = import_cvector(src);
    save_plan(plan, dir + "/plan.json");
    const Plan reread = load_plan(dir + "/plan.json");
    write_cvector(plan_to_cvector(reread, nullptr), dir + "/cv.gguf");
    auto a = gguf::File::open(src), b = gguf::File::open(dir + "/cv.gguf");
    ASSERT_EQ(a->tensors().size(), b->tensors().size());
    for (size_t i = 0; i < a->tensors().size(); ++i) {
        EXPECT_EQ(a->tensors()[i].name, b->tensors()[i].name);
        ASSERT_EQ(a->tensors()[i].n_bytes, b->tensors()[i].n_bytes);
        EXPECT_EQ(std::memcmp(a->tensors()[i].data, b->tensors()[i].data, a->tensors()[i].n_bytes), 0);
    }
    EXPECT_EQ(b->get_string("controlvector.model_hint"), "llama");
    EXPECT_EQ(b->get_int("controlvector.layer_count"), 5);

    // a sparse, scaled, two-part plan -> file -> plan: the same steering, bit for bit
    const Plan sparse = parse_plan(test::plan_text(R"(
        {"op": "add", "layers": [2, 4], "dims": [3, 17, 50], "values": [2.0, -1.5, 3.0], "alpha": 0.3},
        {"op": "add", "layers": {"from": 4, "to": 5}, "dims": "all", "values": [)" + [] {
                                                      std::string v;
                                                      for (int i = 0; i < 64; ++i) v += (i ? "," : "") + std::to_string(0.01 * i);
                                                      return v;
                                                  }() + "]}",
                                                  R"("alpha": 1.7, "model": {"arch": "llama"}, )"),
                                   "sparse.json", ".");
    write_cvector(plan_to_cvector(sparse, &test::deep_model()), dir + "/sparse.gguf");
    const Plan back = import_cvector(dir + "/sparse.gguf");
    EXPECT_EQ(back.interventions.size(), 3u);
    Steering s1(test::deep_model(), std::span<const Plan>(&sparse, 1)), s2(test::deep_model(), std::span<const Plan>(&back, 1));
    const test::Run r1 = test::run(test::deep_model(), test::deep_prompt(), &s1);
    const test::Run r2 = test::run(test::deep_model(), test::deep_prompt(), &s2);
    EXPECT_EQ(std::memcmp(r1.logits.data(), r2.logits.data(), r1.logits.size() * 4), 0);
    EXPECT_EQ(std::memcmp(r1.resid_post.data(), r2.resid_post.data(), r1.resid_post.size() * 4), 0);
    // and a second export of the imported plan writes the same file
    write_cvector(plan_to_cvector(back, nullptr), dir + "/again.gguf");
    EXPECT_EQ(read_text_file(dir + "/again.gguf"), read_text_file(dir + "/sparse.gguf"));
}

TEST(CvectorExport, RefusesWhatAControlVectorCannotExpress) {
    struct Case {
        const char* intervention;
        const char* message;
    };
    const Case cases[] = {
        {R"({"op": "set", "layers": [1], "dims": [0], "values": [1]})",
         "interventions[0].op: operation 'set' is not an addition (a control vector can only add a vector)"},
        {R"({"op": "scale", "layers": [1], "dims": [0], "values": [1]})",
         "interventions[0].op: operation 'scale' is not an addition (a control vector can only add a vector)"},
        {R"({"op": "clamp", "layers": [1], "dims": [0], "max": [1]})",
         "interventions[0].op: operation 'clamp' is not an addition (a control vector can only add a vector)"},
        {R"({"op": "zero", "layers": [1], "dims": [0]})",
         "interventions[0].op: operation 'zero' is not an addition (a control vector can only add a vector)"},
        {R"({"op": "mean", "layers": [1], "dims": [0], "values": [1]})",
         "interventions[0].op: operation 'mean' is not an addition (a control vector can only add a vector)"},
        {R"({"op": "add", "layers": [1], "dims": [0], "values": [1], "positions": "prompt"})",
         "interventions[0].positions: position policy 'prompt' is not 'all' (llama.cpp adds a control vector at "
         "every position)"},
        {R"({"op": "add", "layers": [1], "dims": [0], "values": [1], "positions": "skip_bos"})",
         "interventions[0].positions: position policy 'skip_bos' is not 'all' (llama.cpp adds a control vector at "
         "every position)"},
        {R"({"op": "add", "layers": [2, 0], "dims": [0], "values": [1]})",
         "interventions[0].layers: block 0 cannot be steered by llama.cpp (it has no direction.0)"},
        {R"({"op": "add", "layers": "all", "dims": [0], "values": [1]})",
         "interventions[0].layers: \"all\" includes block 0, which llama.cpp cannot steer (it has no direction.0; use "
         "{\"from\": 1, \"to\": N})"},
        {R"({"op": "add", "point": "mlp_out", "layers": [1], "dims": [0], "values": [1]})",
         "interventions[0].point: hook point 'mlp_out' is not resid_post (llama.cpp adds control vectors to block "
         "outputs)"},
    };
    for (const Case& c : cases) {
        const Plan plan = parse_plan(test::plan_text(c.intervention), "p.json", ".");
        EXPECT_EQ(error_of([&] { plan_to_cvector(plan, &test::deep_model()); }),
                  std::string("p.json: ") + c.message + "; it cannot be exported as a llama.cpp control vector");
    }
}

// The commands end to end: import, dump --steer, export.
TEST(CvectorCli, ImportDumpExport) {
    const std::string dir = critdim::test::temp_dir("cvec-cli");
    const json* c = nullptr;
    for (const json& x : manifest()["cases"])
        if (x["id"] == "cvec-llama-deep-sparse-range") c = &x;
    ASSERT_NE(c, nullptr);
    auto r = critdim::test::run_critdim({"import-cvector", golden_dir() + "/cvec/llama-deep-sparse.gguf", "--scale", "4",
                                         "--layer-range", "2", "4", "--out", dir + "/plan.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string ids;
    for (int32_t t : (*c)["prompt_ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(t);
    r = critdim::test::run_critdim({"dump", golden_dir() + "/models/llama-deep-f32.gguf", "--tokens", ids, "--out",
                                    dir + "/dump", "--steer", dir + "/plan.json", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const NpyArray got = read_npy(dir + "/dump/resid_post.npy");
    const NpyArray want = read_npy(golden_dir() + "/" + (*c)["files"]["resid_post"]["path"].get<std::string>());
    ASSERT_EQ(got.size(), want.size());
    double max_abs = 0;
    for (int64_t i = 0; i < got.size(); ++i)
        max_abs = std::max(max_abs, std::fabs(static_cast<double>(got.data[static_cast<size_t>(i)]) - want.data[static_cast<size_t>(i)]));
    EXPECT_LE(max_abs, 1e-5);

    r = critdim::test::run_critdim({"export-cvector", dir + "/plan.json", "--out", dir + "/cv.gguf"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto f = gguf::File::open(dir + "/cv.gguf");
    ASSERT_EQ(f->tensors().size(), 3u);
    EXPECT_EQ(f->tensors()[0].name, "direction.2");

    // a mismatched plan through the command: exit code 4 (mismatch) and the message
    write_file_atomic(dir + "/bad.json", test::plan_text(R"({"op": "zero", "layers": [9]})"));
    r = critdim::test::run_critdim({"dump", golden_dir() + "/models/llama-deep-f32.gguf", "--tokens", "1,2", "--out",
                                    dir + "/dump2", "--steer", dir + "/bad.json"});
    EXPECT_EQ(r.exit_code, 4);
    EXPECT_EQ(r.err, "critdim: error: " + dir + "/bad.json: interventions[0].layers: 9 is out of range (model has 6 layers)\n");
    r = critdim::test::run_critdim({"import-cvector", golden_dir() + "/cvec/llama-deep-with-direction0.gguf", "--out",
                                    dir + "/d0.json"});
    EXPECT_EQ(r.exit_code, 3);
}

}  // namespace
}  // namespace critdim::steer
