#include "model/binder.hpp"

#include <vector>

#include "critdim/kernels.hpp"

namespace critdim::model {

uint64_t Binder::key_uint(const std::string& key) const { return file_.get_uint(arch_ + "." + key); }
uint64_t Binder::key_uint(const std::string& key, uint64_t fallback) const {
    return file_.get_uint(arch_ + "." + key, fallback);
}
float Binder::key_float(const std::string& key, float fallback) const {
    return static_cast<float>(file_.get_float(arch_ + "." + key, fallback));
}

void Binder::fail(const std::string& name, const std::string& what) const {
    throw Error(ErrorKind::input, file_.path(), "tensor '" + name + "': " + what);
}

const gguf::TensorInfo& Binder::tensor(const std::string& name) const {
    const gguf::TensorInfo* t = file_.find_tensor(name);
    if (!t)
        throw Error(ErrorKind::input, file_.path(), "tensor '" + name + "' is missing (architecture " + arch_ + ")");
    const TensorTypeInfo* info = tensor_type_info(t->type_id);
    if (!info->supported || t->type() == TensorType::Q8_K)
        fail(name, std::string("type ") + info->name +
                       " is not supported (supported: " + supported_tensor_type_names() + ")");
    return *t;
}

static std::string shape_text(int64_t a, int64_t b) { return "[" + std::to_string(a) + ", " + std::to_string(b) + "]"; }

Tensor Binder::matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const {
    const gguf::TensorInfo& t = tensor(name);
    const int64_t cols = t.shape.empty() ? 1 : t.shape[0];
    if (t.shape.size() > 2 || cols != n_cols || t.n_rows() != n_rows)
        fail(name, "shape " + t.shape_string() + " does not match the architecture (expected " +
                       shape_text(n_cols, n_rows) + ")");
    Tensor out;
    out.name = name;
    out.type = t.type();
    out.n_cols = cols;
    out.n_rows = n_rows;
    out.data = t.data;
    out.row_bytes = tensor_row_bytes(out.type, cols);
    return out;
}

Vector Binder::vector(const std::string& name, int64_t n, int64_t n_rows) const {
    const gguf::TensorInfo& t = tensor(name);
    if (t.n_elements() != n * n_rows || (t.shape.empty() ? 1 : t.shape[0]) != n)
        fail(name, "shape " + t.shape_string() + " does not match the architecture (expected " +
                       (n_rows == 1 ? "[" + std::to_string(n) + "]" : shape_text(n, n_rows)) + ")");
    Vector v(static_cast<size_t>(n * n_rows));
    const size_t rb = tensor_row_bytes(t.type(), n);
    for (int64_t r = 0; r < n_rows; ++r) kernels::dequantize_row(t.type(), t.data + r * rb, v.data() + r * n, n);
    return v;
}

void Binder::read_common(HParams& hp, const char* eps_key) const {
    hp.n_embd = static_cast<int64_t>(key_uint("embedding_length"));
    hp.n_layer = static_cast<int64_t>(key_uint("block_count"));
    hp.n_ff = static_cast<int64_t>(key_uint("feed_forward_length"));
    hp.n_head = static_cast<int64_t>(key_uint("attention.head_count"));
    hp.n_head_kv = static_cast<int64_t>(key_uint("attention.head_count_kv", hp.n_head));
    hp.n_ctx_train = static_cast<int64_t>(key_uint("context_length", 2048));
    const std::string where = file_.path();
    if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0)
        throw Error(ErrorKind::input, where, arch_ + ": sizes must be positive");
    // The training context is the default context size, so it sizes the KV cache: bounded here
    // (real models stay below 2^24) so that a hostile file cannot claim 2^32 positions.
    if (hp.n_ctx_train <= 0 || hp.n_ctx_train > (1 << 24))
        throw Error(ErrorKind::input, where,
                    "key '" + arch_ + ".context_length': " + std::to_string(hp.n_ctx_train) +
                        " is out of range (1 to 16777216)");
    if (hp.n_layer > 4096 || hp.n_embd > (1 << 20) || hp.n_head > 4096)
        throw Error(ErrorKind::input, where,
                    arch_ + ": implausible sizes (block_count " + std::to_string(hp.n_layer) + ", embedding_length " +
                        std::to_string(hp.n_embd) + ")");
    if (hp.n_head % hp.n_head_kv != 0)
        throw Error(ErrorKind::input, where,
                    "key '" + arch_ + ".attention.head_count_kv': " + std::to_string(hp.n_head_kv) +
                        " does not divide head_count " + std::to_string(hp.n_head));
    if (!has_key("attention.key_length") && hp.n_embd % hp.n_head != 0)
        throw Error(ErrorKind::input, where, arch_ + ": embedding_length is not a multiple of head_count");
    hp.head_dim = static_cast<int64_t>(key_uint("attention.key_length", hp.n_embd / hp.n_head));
    hp.head_dim_v = static_cast<int64_t>(key_uint("attention.value_length", hp.head_dim));
    hp.n_rot = static_cast<int64_t>(key_uint("rope.dimension_count", hp.head_dim));
    if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
        throw Error(ErrorKind::input, where,
                    "key '" + arch_ + ".rope.dimension_count': " + std::to_string(hp.n_rot) +
                        " is odd or above the head size " + std::to_string(hp.head_dim));
    hp.rope_base = key_float("rope.freq_base", 10000.0f);
    hp.norm_eps = key_float(eps_key, 1e-5f);
    const std::string scaling = file_.get_string(arch_ + ".rope.scaling.type", "none");
    if (scaling == "linear") {
        const float factor = key_float("rope.scaling.factor", 1.0f);
        if (!(factor > 0.0f))
            throw Error(ErrorKind::input, where, "key '" + arch_ + ".rope.scaling.factor' must be positive");
        hp.rope_freq_scale = 1.0f / factor;
    } else if (scaling != "none") {
        throw Error(
            ErrorKind::input, where,
            "key '" + arch_ + ".rope.scaling.type': '" + scaling + "' is not supported (supported: none, linear)");
    }
    hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
    const gguf::TensorInfo* embd = file_.find_tensor("token_embd.weight");
    if (!embd) throw Error(ErrorKind::input, where, "tensor 'token_embd.weight' is missing");
    if (embd->shape.size() != 2 || embd->shape[0] != hp.n_embd)
        throw Error(ErrorKind::input, where,
                    "tensor 'token_embd.weight': shape " + embd->shape_string() + " does not match embedding_length " +
                        std::to_string(hp.n_embd));
    hp.n_vocab = embd->shape[1];
}

void for_each_layer(Model& m, const std::function<void(LayerWeights&, const std::string&, int64_t)>& fn) {
    m.w_.layers.resize(static_cast<size_t>(m.hp_.n_layer));
    for (int64_t il = 0; il < m.hp_.n_layer; ++il)
        fn(m.w_.layers[static_cast<size_t>(il)], "blk." + std::to_string(il) + ".", il);
}

void bind_llama_like(Binder& b, Model& m) {
    const HParams& hp = m.hp_;
    Weights& w = m.w_;
    w.token_embd = b.matrix("token_embd.weight", hp.n_embd, hp.n_vocab);
    w.output_norm = b.vector("output_norm.weight", hp.n_embd);
    m.hp_.tied_output = !b.has("output.weight");
    w.output = hp.tied_output ? w.token_embd : b.matrix("output.weight", hp.n_embd, hp.n_vocab);
    const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.kv_dim(), v_dim = hp.kv_dim_v();
    for_each_layer(m, [&](LayerWeights& l, const std::string& p, int64_t) {
        l.attn_norm = b.vector(p + "attn_norm.weight", hp.n_embd);
        l.wq = b.matrix(p + "attn_q.weight", hp.n_embd, q_dim);
        l.wk = b.matrix(p + "attn_k.weight", hp.n_embd, kv_dim);
        l.wv = b.matrix(p + "attn_v.weight", hp.n_embd, v_dim);
        l.wo = b.matrix(p + "attn_output.weight", hp.n_head * hp.head_dim_v, hp.n_embd);
        l.ffn_norm = b.vector(p + "ffn_norm.weight", hp.n_embd);
        l.ffn_gate = b.matrix(p + "ffn_gate.weight", hp.n_embd, hp.n_ff);
        l.ffn_up = b.matrix(p + "ffn_up.weight", hp.n_embd, hp.n_ff);
        l.ffn_down = b.matrix(p + "ffn_down.weight", hp.n_ff, hp.n_embd);
    });
}

}  // namespace critdim::model
