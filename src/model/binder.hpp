// Binding a GGUF file's tensors and keys to an architecture's description: every tensor is
// checked for presence, shape and a supported type, with errors that name file and tensor.
#pragma once

#include <functional>
#include <string>

#include "critdim/gguf.hpp"
#include "critdim/model.hpp"

namespace critdim::model {

class Binder {
public:
    Binder(const gguf::File& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

    const gguf::File& file() const { return file_; }

    // `<arch>.<key>` metadata.
    uint64_t key_uint(const std::string& key) const;
    uint64_t key_uint(const std::string& key, uint64_t fallback) const;
    float key_float(const std::string& key, float fallback) const;
    bool has_key(const std::string& key) const { return file_.has(arch_ + "." + key); }

    bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
    // A weight matrix with rows of n_cols elements and n_rows rows, mapped (never copied).
    Tensor matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const;
    // A 1-D parameter of n elements (or an n_rows x n matrix flattened), dequantized.
    Vector vector(const std::string& name, int64_t n, int64_t n_rows = 1) const;
    Vector vector_opt(const std::string& name, int64_t n) const { return has(name) ? vector(name, n) : Vector{}; }

    // The common llama-style hyper-parameters (sizes, heads, rope, norm epsilon, context).
    void read_common(HParams& hp, const char* eps_key) const;

private:
    const gguf::TensorInfo& tensor(const std::string& name) const;
    [[noreturn]] void fail(const std::string& name, const std::string& what) const;

    const gguf::File& file_;
    std::string arch_;
};

// One architecture description each (src/model/arch_<name>.cpp).
void load_llama(Binder& b, Model& m);
void load_qwen2(Binder& b, Model& m);
void load_qwen3(Binder& b, Model& m);
void load_gemma2(Binder& b, Model& m);
void load_gpt2(Binder& b, Model& m);
void load_phi3(Binder& b, Model& m);

// Calls fn(layer weights, "blk.N.", N) for every block, sizing the layer list first.
void for_each_layer(Model& m, const std::function<void(LayerWeights&, const std::string&, int64_t)>& fn);

// Binds the parts every llama-like family shares: embeddings, output (tied if absent), norms,
// and per layer attn_norm, wq/wk/wv/wo, ffn_norm, ffn_gate/up/down.
void bind_llama_like(Binder& b, Model& m);

}  // namespace critdim::model
