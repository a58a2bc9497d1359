// critdim model: architectures, weights bound to a mapped GGUF file, the forward pass with its
// KV cache, hook sites on the residual stream, sampling and generation.
//
// Hook sites (docs/hooks.md): `embed`, `resid_pre.L`, `attn_out.L`, `mlp_out.L`,
// `resid_post.L` (llama.cpp's l_out-L) and `final_norm`, with L the 0-based block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "critdim/base.hpp"
#include "critdim/gguf.hpp"

namespace critdim::model {

// ---------------------------------------------------------------------------------------------
// Architectures and hyper-parameters.

enum class RopeType { none, norm, neox };  // norm: adjacent pairs (2i, 2i+1); neox: (i, i + d/2)
enum class NormType { rms, layer };
enum class FfnType {
    silu_gated,        // down(silu(gate(x)) * up(x))
    silu_gated_fused,  // phi3: up holds [gate; up]
    gelu_gated,        // gemma2: down(gelu(gate(x)) * up(x))
    gelu,              // gpt2: down(gelu(up(x)))
};

struct HParams {
    std::string arch;
    int64_t n_vocab = 0;
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;    // key/query head size
    int64_t head_dim_v = 0;  // value head size
    int64_t n_ff = 0;
    int64_t n_rot = 0;  // rotary dimensions per head
    int64_t n_ctx_train = 0;
    float rope_base = 10000.0f;
    float rope_freq_scale = 1.0f;  // linear rope scaling: 1 / factor
    float norm_eps = 1e-5f;
    float attn_scale = 0.0f;     // multiplies q·k
    int64_t sliding_window = 0;  // 0: none
    float attn_softcap = 0.0f;   // 0: none
    float final_softcap = 0.0f;  // 0: none
    float embed_scale = 1.0f;    // gemma2: sqrt(n_embd)
    RopeType rope_type = RopeType::norm;
    NormType norm_type = NormType::rms;
    FfnType ffn_type = FfnType::silu_gated;
    bool tied_output = false;

    int64_t kv_dim() const { return n_head_kv * head_dim; }
    int64_t kv_dim_v() const { return n_head_kv * head_dim_v; }
};

// A weight matrix as it lies in the mapped file: rows of shape[0] elements of `type`.
struct Tensor {
    std::string name;
    TensorType type = TensorType::F32;
    int64_t n_cols = 0;  // elements per row (ggml ne[0])
    int64_t n_rows = 0;
    const uint8_t* data = nullptr;
    size_t row_bytes = 0;
    const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

// A 1-D parameter (norm weight, bias), dequantized to float32 at load (small).
using Vector = std::vector<float>;

struct LayerWeights {
    Vector attn_norm, attn_norm_b;
    Tensor wq, wk, wv, wqkv, wo;  // either wq/wk/wv or the fused wqkv
    Vector bq, bk, bv, bqkv, bo;
    Vector q_norm, k_norm;  // qwen3: per-head RMSNorm of q and k
    Vector post_attn_norm;  // gemma2
    Vector ffn_norm, ffn_norm_b;
    Tensor ffn_gate, ffn_up, ffn_down;
    Vector ffn_up_b, ffn_down_b;
    Vector post_ffn_norm;  // gemma2
    bool sliding = false;  // this layer uses the sliding window
};

struct Weights {
    Tensor token_embd;
    Vector position_embd;  // gpt2: [n_ctx_train, n_embd]
    std::vector<LayerWeights> layers;
    Vector output_norm, output_norm_b;
    Tensor output;      // token_embd when tied
    Vector rope_freqs;  // per rotary pair, divides the frequency (Llama 3.1)
};

struct LoadOptions {
    bool check_only = false;  // reserved
};

class Model {
public:
    // Opens and validates the file against its architecture. Errors name file and tensor/key.
    static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options = {});

    const HParams& hparams() const { return hp_; }
    const Weights& weights() const { return w_; }
    const gguf::File& file() const { return *file_; }
    const std::string& path() const { return file_->path(); }
    // Architectures critdim runs: "llama, qwen2, qwen3, gemma2, gpt2, phi3".
    static std::string supported_architectures();

    // Internal: filled by the architecture descriptions.
    HParams hp_;
    Weights w_;

private:
    std::unique_ptr<gguf::File> file_;
};

// What `critdim info --json` shows (path, sizes, hyper-parameters, tensor types, tokenizer keys,
// chat template, critdim.* keys) as a compact JSON object.
std::string describe_json(const Model& model);

// ---------------------------------------------------------------------------------------------
// Hook sites.

enum class HookPoint : uint8_t { embed, resid_pre, attn_out, mlp_out, resid_post, final_norm };

struct HookSite {
    HookPoint point = HookPoint::embed;
    int layer = -1;  // -1 for embed and final_norm

    std::string name() const;  // "resid_post.3"
    // Parses "resid_post.3", "embed", "final_norm"; throws a usage error naming the text.
    static HookSite parse(std::string_view text);
    bool operator==(const HookSite&) const = default;
};

const char* hook_point_name(HookPoint p);

// The rows of a batch at a hook site: n_rows x n_embd float32, with each row's token,
// position and sequence.
template <class T>
struct RowsT {
    HookSite site;
    T* data = nullptr;
    int64_t n_rows = 0;
    int64_t n_embd = 0;
    std::span<const int32_t> tokens, positions, seq_ids;
    T* row(int64_t i) const { return data + i * n_embd; }
};
using Rows = RowsT<float>;             // interventions may write
using ConstRows = RowsT<const float>;  // observers only read

using HookId = int;

// Hooks of one context. Interventions at a site run first, in registration order; observers
// then see the stream as modified. Sites with nothing registered cost one branch.
class Hooks {
public:
    using ObserverFn = std::function<void(const ConstRows&)>;
    using InterventionFn = std::function<void(const Rows&)>;

    explicit Hooks(int n_layer);

    HookId observe(HookSite site, ObserverFn fn);
    HookId intervene(HookSite site, InterventionFn fn);
    // Every layer of a per-layer point (resid_pre, attn_out, mlp_out, resid_post).
    std::vector<HookId> observe_all_layers(HookPoint point, const ObserverFn& fn);
    void remove(HookId id);
    void clear();
    bool empty() const { return n_registered_ == 0; }

    // Used by the forward pass.
    bool active(HookSite site) const { return !empty() && !sites_[index(site)].empty(); }
    void run(const Rows& rows) const;

    int n_layer() const { return n_layer_; }

private:
    struct Entry {
        HookId id;
        bool writes;
        ObserverFn observer;
        InterventionFn intervention;
    };
    size_t index(HookSite site) const;
    void check(HookSite site) const;
    HookId add(HookSite site, Entry entry);

    int n_layer_;
    std::vector<std::vector<Entry>> sites_;
    HookId next_id_ = 1;
    int n_registered_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Batches and the context (KV cache, scratch, threads).

struct Batch {
    std::vector<int32_t> tokens, positions, seq_ids;
    std::vector<uint8_t> want_logits;

    void add(int32_t token, int32_t position, int32_t seq_id, bool logits) {
        tokens.push_back(token);
        positions.push_back(position);
        seq_ids.push_back(seq_id);
        want_logits.push_back(logits ? 1 : 0);
    }
    void clear() { tokens.clear(), positions.clear(), seq_ids.clear(), want_logits.clear(); }
    int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

struct ContextParams {
    int64_t n_ctx = 0;      // positions per sequence; 0: the model's training context
    int64_t n_batch = 512;  // largest number of tokens per forward pass
    int n_seq = 1;          // independent sequences sharing the context
    int n_threads = 0;      // 0: all cores
};

class Context {
public:
    Context(const Model& model, const ContextParams& params);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // Runs the batch through the model, appending its keys and values to each sequence's cache.
    // Batches longer than n_batch are split. Logits are kept for rows with want_logits, in order.
    void decode(const Batch& batch);
    // Convenience for one sequence: the tokens continue sequence `seq` at its current length.
    void decode(std::span<const int32_t> tokens, bool all_logits, int32_t seq = 0);

    // Logits of the i-th output row of the last decode (rows with want_logits, in order).
    const float* logits(int64_t i) const;
    int64_t n_outputs() const { return n_outputs_; }

    int64_t seq_length(int32_t seq = 0) const;
    void clear_seq(int32_t seq = 0);  // forget a sequence's cache
    void clear();

    Hooks& hooks() { return hooks_; }
    const Model& model() const { return model_; }
    int64_t n_ctx() const { return n_ctx_; }
    int n_threads() const;
    ThreadPool& pool();

private:
    struct Impl;
    void forward(const Batch& batch, int64_t begin, int64_t end);

    const Model& model_;
    int64_t n_ctx_;
    Hooks hooks_;
    std::unique_ptr<Impl> impl_;
    int64_t n_outputs_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Sampling and generation.

struct SamplerParams {
    float temperature = 0.0f;  // 0: greedy (argmax, ties to the lower id)
    int top_k = 0;             // 0: off
    float top_p = 1.0f;        // 1: off
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& params);
    int32_t sample(const float* logits, int64_t n_vocab);
    static int32_t argmax(const float* logits, int64_t n_vocab);

private:
    SamplerParams params_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace critdim::model

// ---------------------------------------------------------------------------------------------
// Synthetic models: random weights at real configurations, for tests and benchmarks.

namespace critdim::model {

struct SynthConfig {
    std::string name;
    std::string arch;  // the family the configuration comes from
    int64_t n_vocab = 512, n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 0, n_ff = 128;
    int64_t n_ctx = 256;
    float rope_base = 10000.0f, norm_eps = 1e-5f;
    bool tied = true;
    int64_t sliding_window = 0;
    float attn_softcap = 0.0f, final_softcap = 0.0f;
};

// Named configurations ("tiny", "smollm2-135m", "qwen2.5-0.5b", "gemma-2-2b", "qwen3-0.6b", ...)
// or a JSON file with the same fields. Errors name the file and field.
SynthConfig synth_config(const std::string& name_or_path);
std::vector<std::string> synth_config_names();

struct SynthOptions {
    std::string arch;  // empty: the configuration's own
    SynthConfig config;
    TensorType type = TensorType::F32;  // type of every 2-D weight; 1-D stay F32
    uint64_t seed = 0;
    int n_threads = 0;
    std::string plant;  // "default": planted dimensions, critdim.plant.* (src/model/plant.cpp)
};

struct SynthReport {
    std::vector<std::string> fallbacks;  // "tensor: Q4_K -> Q8_0" where rows do not fit the type
    uint64_t file_bytes = 0;
};

SynthReport synthesize(const SynthOptions& options, const std::string& out_path);

// A weight type synth can write ("q8_0", "F32", ...); otherwise Error(usage) naming --type.
TensorType parse_synth_type(std::string_view name);

}  // namespace critdim::model
