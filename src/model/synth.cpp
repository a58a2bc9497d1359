// critdim synth: a GGUF model of any supported architecture with random weights at a named
// real configuration, in any supported tensor type, with a vocabulary critdim writes itself.
// Weights are N(0, 1/fan_in), norm weights 1 + 0.1 N(0, 1), biases 0.02 N(0, 1); every value
// depends only on the seed, the tensor name and the row, never on the thread count.
#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "critdim/gguf.hpp"
#include "critdim/kernels.hpp"
#include "critdim/model.hpp"
#include "model/plant.hpp"
#include "model/synth_vocab.hpp"

namespace critdim::model {

namespace {

SynthConfig make(const char* name, const char* arch, int64_t vocab, int64_t embd, int64_t layers, int64_t heads,
                 int64_t kv_heads, int64_t head_dim, int64_t ff, int64_t ctx, float rope, float eps, bool tied) {
    SynthConfig c;
    c.name = name;
    c.arch = arch;
    c.n_vocab = vocab;
    c.n_embd = embd;
    c.n_layer = layers;
    c.n_head = heads;
    c.n_head_kv = kv_heads;
    c.head_dim = head_dim;
    c.n_ff = ff;
    c.n_ctx = ctx;
    c.rope_base = rope;
    c.norm_eps = eps;
    c.tied = tied;
    return c;
}

std::vector<SynthConfig> named_configs() {
    std::vector<SynthConfig> v;
    v.push_back(make("tiny", "llama", 512, 64, 2, 4, 2, 16, 128, 256, 10000.0f, 1e-5f, true));
    v.push_back(make("tiny-untied", "llama", 512, 64, 2, 4, 2, 16, 128, 256, 10000.0f, 1e-5f, false));
    v.push_back(make("small", "llama", 2048, 256, 4, 8, 4, 32, 512, 1024, 10000.0f, 1e-5f, true));
    v.push_back(make("smollm2-135m", "llama", 49152, 576, 30, 9, 3, 64, 1536, 8192, 100000.0f, 1e-5f, true));
    v.push_back(make("qwen2.5-0.5b", "qwen2", 151936, 896, 24, 14, 2, 64, 4864, 32768, 1000000.0f, 1e-6f, true));
    v.push_back(make("qwen3-0.6b", "qwen3", 151936, 1024, 28, 16, 8, 128, 3072, 40960, 1000000.0f, 1e-6f, true));
    SynthConfig g = make("gemma-2-2b", "gemma2", 256000, 2304, 26, 8, 4, 256, 9216, 8192, 10000.0f, 1e-6f, true);
    g.sliding_window = 4096;
    g.attn_softcap = 50.0f;
    g.final_softcap = 30.0f;
    v.push_back(g);
    return v;
}

SynthConfig config_from_json(const std::string& path) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_text_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw_input(path, std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw_input(path, "expected a JSON object");
    SynthConfig c = named_configs()[0];
    c.name = path;
    for (const auto& item : j.items()) {
        // Named, not structured bindings: the lambdas below capture them (clang 14 refuses those).
        const std::string key = item.key();
        const nlohmann::json& value = item.value();
        auto integer = [&](int64_t& dst) {
            if (!value.is_number_integer() || value.get<int64_t>() < 0)
                throw_input(path, "field '" + key + "': expected a non-negative integer");
            dst = value.get<int64_t>();
        };
        auto number = [&](float& dst) {
            if (!value.is_number()) throw_input(path, "field '" + key + "': expected a number");
            dst = value.get<float>();
        };
        if (key == "name" || key == "arch") {
            if (!value.is_string()) throw_input(path, "field '" + key + "': expected a string");
            (key == "name" ? c.name : c.arch) = value.get<std::string>();
        } else if (key == "n_vocab")
            integer(c.n_vocab);
        else if (key == "n_embd")
            integer(c.n_embd);
        else if (key == "n_layer")
            integer(c.n_layer);
        else if (key == "n_head")
            integer(c.n_head);
        else if (key == "n_head_kv")
            integer(c.n_head_kv);
        else if (key == "head_dim")
            integer(c.head_dim);
        else if (key == "n_ff")
            integer(c.n_ff);
        else if (key == "n_ctx")
            integer(c.n_ctx);
        else if (key == "sliding_window")
            integer(c.sliding_window);
        else if (key == "rope_base")
            number(c.rope_base);
        else if (key == "norm_eps")
            number(c.norm_eps);
        else if (key == "attn_softcap")
            number(c.attn_softcap);
        else if (key == "final_softcap")
            number(c.final_softcap);
        else if (key == "tied") {
            if (!value.is_boolean()) throw_input(path, "field 'tied': expected true or false");
            c.tied = value.get<bool>();
        } else {
            throw_input(path, "unknown field '" + key + "'");
        }
    }
    return c;
}

// splitmix64: a tiny, well-mixed generator; one stream per (seed, tensor, row block).
struct Rng {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
    // Box-Muller; returns two normals at a time.
    void normal2(float& a, float& b) {
        const double r = std::sqrt(-2.0 * std::log(uniform())), t = 6.283185307179586 * uniform();
        a = static_cast<float>(r * std::cos(t));
        b = static_cast<float>(r * std::sin(t));
    }
};

uint64_t hash_name(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
    return h;
}

enum class Init { weight, norm, bias };

struct Planned {
    std::string name;
    std::vector<int64_t> shape;
    Init init;
};

class Builder {
public:
    Builder(const SynthOptions& o, ThreadPool& pool, gguf::Writer& w, SynthReport& report, const Plant* plant)
        : o_(o), pool_(pool), w_(w), report_(report), plant_(plant) {}

    void add(const std::string& name, std::vector<int64_t> shape, Init init) {
        TensorType type = TensorType::F32;
        if (shape.size() == 2 && init == Init::weight) {
            type = o_.type;
            const int64_t block = tensor_type_info(type).block_size;
            if (shape[0] % block != 0) {
                // The k-quants need rows of 256; llama.cpp's quantizer falls back the same way.
                const TensorType fallback = shape[0] % 32 == 0 ? TensorType::Q8_0 : TensorType::F16;
                report_.fallbacks.push_back(name + ": " + tensor_type_name(type) + " -> " + tensor_type_name(fallback));
                type = fallback;
            }
        }
        const uint64_t seed = o_.seed, name_hash = hash_name(name);
        const int64_t n_cols = shape[0];
        const int64_t n_rows = shape.size() == 2 ? shape[1] : 1;
        // The plant may change a row's values before they are stored.
        const auto adjust = plant_ ? plant_->adjuster(name, n_cols) : std::function<void(int64_t, float*)>{};
        const float stdev =
            init == Init::weight ? 1.0f / std::sqrt(static_cast<float>(n_cols)) : (init == Init::norm ? 0.1f : 0.02f);
        const float mean = init == Init::norm ? 1.0f : 0.0f;
        ThreadPool* pool = &pool_;
        w_.add_tensor(name, type, std::move(shape), [=](uint8_t* dst, size_t) {
            constexpr int64_t kRowsPerStream = 16;
            const size_t row_bytes = tensor_row_bytes(type, n_cols);
            const int64_t n_blocks = (n_rows + kRowsPerStream - 1) / kRowsPerStream;
            pool->parallel_for(n_blocks, [&](int64_t b, int64_t e) {
                std::vector<float> row(static_cast<size_t>(n_cols + 1));
                for (int64_t blk = b; blk < e; ++blk) {
                    Rng rng{seed * 0x2545F4914F6CDD1Dull ^ name_hash ^ (static_cast<uint64_t>(blk) << 32)};
                    for (int64_t r = blk * kRowsPerStream; r < std::min(n_rows, (blk + 1) * kRowsPerStream); ++r) {
                        for (int64_t i = 0; i < n_cols; i += 2) rng.normal2(row[i], row[i + 1]);
                        for (int64_t i = 0; i < n_cols; ++i) row[i] = mean + stdev * row[i];
                        if (adjust) adjust(r, row.data());
                        kernels::quantize_row(type, row.data(), dst + static_cast<size_t>(r) * row_bytes, n_cols);
                    }
                }
            });
        });
    }

private:
    const SynthOptions& o_;
    ThreadPool& pool_;
    gguf::Writer& w_;
    SynthReport& report_;
    const Plant* plant_;
};

void check_config(const SynthConfig& c, const std::string& arch) {
    auto bad = [&](const std::string& what) { throw_usage("synth config '" + c.name + "': " + what); };
    if (c.n_vocab <= 0 || c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.n_ff <= 0 ||
        c.n_ctx <= 0)
        bad("every size must be positive");
    if (c.n_head % c.n_head_kv != 0) bad("n_head must be a multiple of n_head_kv");
    const int64_t hd = c.head_dim > 0 ? c.head_dim : c.n_embd / c.n_head;
    if (hd % 2 != 0) bad("the head size must be even");
    if (arch == "gpt2" && (c.n_embd % c.n_head != 0 || hd != c.n_embd / c.n_head))
        bad("gpt2 needs head_dim == n_embd / n_head");
    if (c.n_embd % 32 != 0 || c.n_ff % 32 != 0 || (c.n_head * hd) % 32 != 0)
        bad("n_embd, n_ff and n_head * head_dim must be multiples of 32");
}

}  // namespace

std::vector<std::string> synth_config_names() {
    std::vector<std::string> names;
    for (const auto& c : named_configs()) names.push_back(c.name);
    return names;
}

SynthConfig synth_config(const std::string& name_or_path) {
    for (const auto& c : named_configs())
        if (c.name == name_or_path) return c;
    if (name_or_path.size() > 5 && name_or_path.substr(name_or_path.size() - 5) == ".json")
        return config_from_json(name_or_path);
    std::string names;
    for (const auto& n : synth_config_names()) names += (names.empty() ? "" : ", ") + n;
    throw_usage("unknown synth config '" + name_or_path + "' (named: " + names + "; or a .json file)");
}

SynthReport synthesize(const SynthOptions& o, const std::string& out_path) {
    const SynthConfig& c = o.config;
    const std::string arch = o.arch.empty() ? c.arch : o.arch;
    if (arch != "llama" && arch != "qwen2" && arch != "qwen3" && arch != "gemma2" && arch != "gpt2" && arch != "phi3")
        throw_usage("synth: architecture '" + arch +
                    "' is not supported (supported: " + Model::supported_architectures() + ")");
    if (!tensor_type_info(o.type).supported) throw_usage("synth: unsupported tensor type");
    check_config(c, arch);
    const int64_t E = c.n_embd, H = c.n_head, Hkv = arch == "gpt2" ? c.n_head : c.n_head_kv;
    const int64_t D = c.head_dim > 0 ? c.head_dim : E / H;
    const int64_t F = c.n_ff, V = c.n_vocab;
    const std::string a = arch + ".";

    gguf::Writer w;
    w.set("general.architecture", gguf::Value::str(arch));
    w.set("general.name", gguf::Value::str("critdim synth " + c.name + " seed " + std::to_string(o.seed)));
    w.set("general.alignment", gguf::Value::u32(32));
    w.set(a + "context_length", gguf::Value::u32(static_cast<uint32_t>(c.n_ctx)));
    w.set(a + "embedding_length", gguf::Value::u32(static_cast<uint32_t>(E)));
    w.set(a + "block_count", gguf::Value::u32(static_cast<uint32_t>(c.n_layer)));
    w.set(a + "feed_forward_length", gguf::Value::u32(static_cast<uint32_t>(F)));
    w.set(a + "attention.head_count", gguf::Value::u32(static_cast<uint32_t>(H)));
    if (arch == "gpt2") {
        w.set(a + "attention.layer_norm_epsilon", gguf::Value::f32(c.norm_eps));
    } else {
        w.set(a + "attention.head_count_kv", gguf::Value::u32(static_cast<uint32_t>(Hkv)));
        w.set(a + "rope.freq_base", gguf::Value::f32(c.rope_base));
        w.set(a + "attention.layer_norm_rms_epsilon", gguf::Value::f32(c.norm_eps));
        if (D != E / H || arch == "gemma2" || arch == "qwen3") {
            w.set(a + "attention.key_length", gguf::Value::u32(static_cast<uint32_t>(D)));
            w.set(a + "attention.value_length", gguf::Value::u32(static_cast<uint32_t>(D)));
        }
        w.set(a + "rope.dimension_count", gguf::Value::u32(static_cast<uint32_t>(D)));
    }
    if (arch == "gemma2") {
        w.set(a + "attention.sliding_window",
              gguf::Value::u32(static_cast<uint32_t>(c.sliding_window > 0 ? c.sliding_window : 4096)));
        w.set(a + "attn_logit_softcapping", gguf::Value::f32(c.attn_softcap > 0 ? c.attn_softcap : 50.0f));
        w.set(a + "final_logit_softcapping", gguf::Value::f32(c.final_softcap > 0 ? c.final_softcap : 30.0f));
    }
    if (arch == "phi3")
        w.set(a + "attention.sliding_window",
              gguf::Value::u32(static_cast<uint32_t>(c.sliding_window > 0 ? c.sliding_window : c.n_ctx)));

    const bool spm = arch == "llama" || arch == "gemma2" || arch == "phi3";
    const SynthVocab vocab = spm ? synth_vocab_spm(V) : synth_vocab_bpe(V, arch == "gpt2" ? "gpt-2" : "qwen2");
    w.set("tokenizer.ggml.model", gguf::Value::str(vocab.model));
    w.set("tokenizer.ggml.pre", gguf::Value::str(vocab.pre));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array(vocab.tokens));
    if (!vocab.scores.empty()) w.set("tokenizer.ggml.scores", gguf::Value::f32_array(vocab.scores));
    w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(vocab.types));
    if (!vocab.merges.empty()) w.set("tokenizer.ggml.merges", gguf::Value::string_array(vocab.merges));
    w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(static_cast<uint32_t>(vocab.bos)));
    w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(static_cast<uint32_t>(vocab.eos)));
    if (vocab.unk >= 0) w.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(static_cast<uint32_t>(vocab.unk)));
    w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(vocab.add_bos));
    w.set("critdim.version", gguf::Value::str(CRITDIM_VERSION));
    w.set("critdim.synth.config", gguf::Value::str(c.name));
    w.set("critdim.synth.seed", gguf::Value::u64(o.seed));
    w.set("critdim.synth.type", gguf::Value::str(tensor_type_name(o.type)));

    ThreadPool pool(o.n_threads > 0 ? o.n_threads : ThreadPool::default_threads());
    SynthReport report;
    const bool tied = c.tied && arch != "gpt2" && arch != "phi3";  // llama.cpp requires their output.weight
    std::unique_ptr<Plant> plant;
    if (!o.plant.empty()) {
        plant = std::make_unique<Plant>(
            make_plant(o.plant, vocab, PlantShape{arch, E, c.n_layer, H, Hkv, D, tied}, o.seed));
        plant->write_metadata(w);
        // A planted world answers instructions, so it has a chat template for them.
        w.set("tokenizer.chat_template", gguf::Value::str(kPlantChatTemplate));
    }
    Builder b(o, pool, w, report, plant.get());
    b.add("token_embd.weight", {E, V}, Init::weight);
    if (arch == "gpt2") b.add("position_embd.weight", {E, c.n_ctx}, Init::bias);
    b.add("output_norm.weight", {E}, Init::norm);
    if (arch == "gpt2") b.add("output_norm.bias", {E}, Init::bias);
    if (!tied) b.add("output.weight", {E, V}, Init::weight);
    for (int64_t il = 0; il < c.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        b.add(p + "attn_norm.weight", {E}, Init::norm);
        if (arch == "gpt2") b.add(p + "attn_norm.bias", {E}, Init::bias);
        if (arch == "gpt2" || arch == "phi3") {
            b.add(p + "attn_qkv.weight", {E, H * D + 2 * Hkv * D}, Init::weight);
            if (arch == "gpt2") b.add(p + "attn_qkv.bias", {3 * E}, Init::bias);
        } else {
            b.add(p + "attn_q.weight", {E, H * D}, Init::weight);
            b.add(p + "attn_k.weight", {E, Hkv * D}, Init::weight);
            b.add(p + "attn_v.weight", {E, Hkv * D}, Init::weight);
            if (arch == "qwen2") {
                b.add(p + "attn_q.bias", {H * D}, Init::bias);
                b.add(p + "attn_k.bias", {Hkv * D}, Init::bias);
                b.add(p + "attn_v.bias", {Hkv * D}, Init::bias);
            }
            if (arch == "qwen3") {
                b.add(p + "attn_q_norm.weight", {D}, Init::norm);
                b.add(p + "attn_k_norm.weight", {D}, Init::norm);
            }
        }
        b.add(p + "attn_output.weight", {H * D, E}, Init::weight);
        if (arch == "gpt2") b.add(p + "attn_output.bias", {E}, Init::bias);
        if (arch == "gemma2") b.add(p + "post_attention_norm.weight", {E}, Init::norm);
        b.add(p + "ffn_norm.weight", {E}, Init::norm);
        if (arch == "gpt2") b.add(p + "ffn_norm.bias", {E}, Init::bias);
        if (arch == "phi3") {
            b.add(p + "ffn_up.weight", {E, 2 * F}, Init::weight);
        } else {
            if (arch != "gpt2") b.add(p + "ffn_gate.weight", {E, F}, Init::weight);
            b.add(p + "ffn_up.weight", {E, F}, Init::weight);
            if (arch == "gpt2") b.add(p + "ffn_up.bias", {F}, Init::bias);
        }
        b.add(p + "ffn_down.weight", {F, E}, Init::weight);
        if (arch == "gpt2") b.add(p + "ffn_down.bias", {E}, Init::bias);
        if (arch == "gemma2") b.add(p + "post_ffw_norm.weight", {E}, Init::norm);
    }
    if (!report.fallbacks.empty()) w.set("critdim.synth.type_fallbacks", gguf::Value::string_array(report.fallbacks));
    w.write(out_path);
    report.file_bytes = gguf::File::open(out_path)->file_size();
    return report;
}

TensorType parse_synth_type(std::string_view name) {
    const TensorTypeInfo* t = tensor_type_by_name(name);
    if (!t || !t->supported || t->id == static_cast<uint32_t>(TensorType::Q8_K))
        throw_usage("--type: '" + std::string(name) + "' is not one of " + supported_tensor_type_names());
    return static_cast<TensorType>(t->id);
}

}  // namespace critdim::model
