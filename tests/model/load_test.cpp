// Loading refuses models that do not fit their architecture, naming file and tensor.
#include <gtest/gtest.h>
#include <unistd.h>

#include "critdim/gguf.hpp"
#include "critdim/model.hpp"
#include "test_util.hpp"

namespace critdim::model {
namespace {

// Rewrites a golden model with one tensor changed (or dropped when `replace` returns false).
std::string rewrite(const std::string& name,
                    const std::function<bool(gguf::Writer&, const gguf::TensorInfo&)>& replace) {
    auto f = gguf::File::open(test::shared_dir() + "/golden/models/llama-tied-f32.gguf");
    gguf::Writer w;
    for (const auto& [k, v] : f->metadata()) w.set(k, v);
    for (const auto& t : f->tensors()) {
        if (t.name == name) {
            if (!replace(w, t)) continue;
        } else {
            w.add_tensor(t.name, t.type(), t.shape, t.data, t.n_bytes);
        }
    }
    const std::string path = test::temp_dir("load") + "/m.gguf";
    w.write(path);
    return path;
}

void expect_load_error(const std::string& path, const std::string& message) {
    try {
        Model::load(path);
        ADD_FAILURE() << "no error; expected " << message;
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::input);
        EXPECT_EQ(std::string(e.what()), path + ": " + message);
    }
}

TEST(ModelLoad, MissingTensor) {
    const std::string path =
        rewrite("blk.0.attn_q.weight", [](gguf::Writer&, const gguf::TensorInfo&) { return false; });
    expect_load_error(path, "tensor 'blk.0.attn_q.weight' is missing (architecture llama)");
}

TEST(ModelLoad, WrongShape) {
    const std::string path = rewrite("blk.0.attn_q.weight", [](gguf::Writer& w, const gguf::TensorInfo& t) {
        std::vector<float> half(static_cast<size_t>(64 * 32), 0.5f);
        w.add_tensor(t.name, TensorType::F32, {64, 32}, half.data(), half.size() * 4);
        return true;
    });
    expect_load_error(
        path, "tensor 'blk.0.attn_q.weight': shape [64, 32] does not match the architecture (expected [64, 64])");
}

TEST(ModelLoad, UnsupportedType) {
    const std::string path = rewrite("blk.0.ffn_up.weight", [](gguf::Writer& w, const gguf::TensorInfo& t) {
        std::vector<uint8_t> q5(static_cast<size_t>(t.n_elements() / 32 * 22), 0);  // Q5_0: 22 bytes per 32
        w.add_tensor(t.name, static_cast<TensorType>(6), t.shape, q5.data(), q5.size());
        return true;
    });
    expect_load_error(path,
                      "tensor 'blk.0.ffn_up.weight': type Q5_0 is not supported (supported: F32, F16, BF16, "
                      "Q8_0, Q4_0, Q4_K, Q6_K)");
}

TEST(ModelLoad, MissingKeyIsNamed) {
    auto f = gguf::File::open(test::shared_dir() + "/golden/models/llama-tied-f32.gguf");
    gguf::Writer w;
    for (const auto& [k, v] : f->metadata())
        if (k != "llama.block_count") w.set(k, v);
    for (const auto& t : f->tensors()) w.add_tensor(t.name, t.type(), t.shape, t.data, t.n_bytes);
    const std::string path = test::temp_dir("load") + "/m.gguf";
    w.write(path);
    expect_load_error(path, "key 'llama.block_count': missing");
}

// The golden model with one metadata key replaced.
std::string with_key(const std::string& key, const gguf::Value& value) {
    auto f = gguf::File::open(test::shared_dir() + "/golden/models/llama-tied-f32.gguf");
    gguf::Writer w;
    for (const auto& [k, v] : f->metadata()) w.set(k, k == key ? value : v);
    for (const auto& t : f->tensors()) w.add_tensor(t.name, t.type(), t.shape, t.data, t.n_bytes);
    const std::string path = test::temp_dir("load") + "/m.gguf";
    w.write(path);
    return path;
}

// A few bytes of metadata must not size the KV cache at 2^32 positions.
TEST(ModelLoad, ImplausibleContextLengthIsRefused) {
    expect_load_error(with_key("llama.context_length", gguf::Value::u32(1u << 30)),
                      "key 'llama.context_length': 1073741824 is out of range (1 to 16777216)");
    expect_load_error(with_key("llama.context_length", gguf::Value::u32(0)),
                      "key 'llama.context_length': 0 is out of range (1 to 16777216)");
}

// A context whose KV cache would take twice this machine's memory is refused, with the numbers,
// before anything is allocated (the test would otherwise be killed or fail to allocate).
TEST(ModelLoad, KvCacheBeyondPhysicalMemoryIsRefusedBeforeAllocating) {
    const auto m = Model::load(test::shared_dir() + "/golden/models/llama-tied-f32.gguf");
    const HParams& hp = m->hparams();
    const uint64_t physical = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
    ASSERT_GT(physical, 0u);
    const auto per_token = static_cast<uint64_t>(4 * hp.n_layer * (hp.kv_dim() + hp.kv_dim_v()));
    ContextParams p;
    p.n_ctx = static_cast<int64_t>(2 * physical / per_token);
    p.n_threads = 1;
    try {
        Context ctx(*m, p);
        ADD_FAILURE() << "a context of " << p.n_ctx << " tokens was allocated";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage);
        const std::string what = e.what();
        EXPECT_NE(what.find("context: a context of " + std::to_string(p.n_ctx) + " tokens x 1 sequence(s) needs "),
                  std::string::npos)
            << what;
        EXPECT_NE(what.find("(choose a smaller context with --ctx)"), std::string::npos) << what;
    }
}

TEST(ModelLoad, SynthModelsOfEveryArchitectureAndTypeLoadAndRun) {
    for (const std::string arch : {"llama", "qwen2", "qwen3", "gemma2", "gpt2", "phi3"}) {
        for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                                TensorType::Q4_K, TensorType::Q6_K}) {
            SCOPED_TRACE(arch + " " + tensor_type_name(type));
            SynthOptions o;
            o.arch = arch;
            o.config = synth_config("tiny");
            o.config.n_embd = 256;  // rows of 256 so that the k-quants need no fallback
            o.config.n_ff = 256;
            o.config.n_head = 4;
            o.config.head_dim = 64;
            o.type = type;
            o.seed = 5;
            o.n_threads = 1;
            const std::string path = test::temp_dir("synth") + "/m.gguf";
            const SynthReport r = synthesize(o, path);
            EXPECT_TRUE(r.fallbacks.empty());
            auto m = Model::load(path);
            EXPECT_EQ(m->hparams().arch, arch);
            Context ctx(*m, {.n_ctx = 8, .n_batch = 8, .n_seq = 1, .n_threads = 2});
            const int32_t ids[] = {1, 2, 3, 4};
            ctx.decode(ids, true);
            for (int i = 0; i < 4; ++i)
                for (int v = 0; v < 512; ++v) ASSERT_TRUE(std::isfinite(ctx.logits(i)[v]));
        }
    }
}

TEST(ModelLoad, SynthIsDeterministicAcrossThreadCounts) {
    SynthOptions o;
    o.config = synth_config("tiny");
    o.type = TensorType::Q4_K;
    o.seed = 9;
    const std::string dir = test::temp_dir("synth");
    o.n_threads = 1;
    const SynthReport r = synthesize(o, dir + "/a.gguf");
    o.n_threads = 3;
    synthesize(o, dir + "/b.gguf");
    EXPECT_EQ(read_text_file(dir + "/a.gguf"), read_text_file(dir + "/b.gguf"));
    // tiny has rows of 64: Q4_K needs 256, so every matrix falls back to Q8_0 and says so.
    EXPECT_FALSE(r.fallbacks.empty());
    auto f = gguf::File::open(dir + "/a.gguf");
    EXPECT_EQ(f->get_string_array("critdim.synth.type_fallbacks").size(), r.fallbacks.size());
    EXPECT_EQ(f->find_tensor("blk.0.ffn_up.weight")->type(), TensorType::Q8_0);
}

}  // namespace
}  // namespace critdim::model
