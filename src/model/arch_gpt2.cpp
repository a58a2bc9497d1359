// gpt2: learned position embeddings, LayerNorm with bias, fused qkv with bias, GELU MLP with
// biases, no rope, every head its own key/value head.
#include "model/binder.hpp"

namespace critdim::model {

void load_gpt2(Binder& b, Model& m) {
    HParams& hp = m.hp_;
    hp.n_embd = static_cast<int64_t>(b.key_uint("embedding_length"));
    hp.n_head = static_cast<int64_t>(b.key_uint("attention.head_count"));
    hp.n_head_kv = hp.n_head;
    hp.n_layer = static_cast<int64_t>(b.key_uint("block_count"));
    hp.n_ff = static_cast<int64_t>(b.key_uint("feed_forward_length"));
    hp.n_ctx_train = static_cast<int64_t>(b.key_uint("context_length"));
    if (hp.n_embd <= 0 || hp.n_head <= 0 || hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_embd % hp.n_head != 0 ||
        hp.n_ctx_train <= 0 || hp.n_ctx_train > (1 << 24))
        throw Error(ErrorKind::input, b.file().path(), "gpt2: inconsistent sizes");
    hp.head_dim = hp.head_dim_v = hp.n_embd / hp.n_head;
    hp.n_rot = 0;
    hp.rope_type = RopeType::none;
    hp.norm_type = NormType::layer;
    hp.ffn_type = FfnType::gelu;
    hp.norm_eps = b.key_float("attention.layer_norm_epsilon", 1e-5f);
    hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
    const gguf::TensorInfo* embd = b.file().find_tensor("token_embd.weight");
    if (!embd || embd->shape.size() != 2 || embd->shape[0] != hp.n_embd)
        throw Error(ErrorKind::input, b.file().path(), "tensor 'token_embd.weight' is missing or has the wrong shape");
    hp.n_vocab = embd->shape[1];

    Weights& w = m.w_;
    w.token_embd = b.matrix("token_embd.weight", hp.n_embd, hp.n_vocab);
    w.position_embd = b.vector("position_embd.weight", hp.n_embd, hp.n_ctx_train);
    w.output_norm = b.vector("output_norm.weight", hp.n_embd);
    w.output_norm_b = b.vector("output_norm.bias", hp.n_embd);
    hp.tied_output = !b.has("output.weight");
    w.output = hp.tied_output ? w.token_embd : b.matrix("output.weight", hp.n_embd, hp.n_vocab);
    for_each_layer(m, [&](LayerWeights& l, const std::string& p, int64_t) {
        l.attn_norm = b.vector(p + "attn_norm.weight", hp.n_embd);
        l.attn_norm_b = b.vector(p + "attn_norm.bias", hp.n_embd);
        l.wqkv = b.matrix(p + "attn_qkv.weight", hp.n_embd, 3 * hp.n_embd);
        l.bqkv = b.vector(p + "attn_qkv.bias", 3 * hp.n_embd);
        l.wo = b.matrix(p + "attn_output.weight", hp.n_embd, hp.n_embd);
        l.bo = b.vector(p + "attn_output.bias", hp.n_embd);
        l.ffn_norm = b.vector(p + "ffn_norm.weight", hp.n_embd);
        l.ffn_norm_b = b.vector(p + "ffn_norm.bias", hp.n_embd);
        l.ffn_up = b.matrix(p + "ffn_up.weight", hp.n_embd, hp.n_ff);
        l.ffn_up_b = b.vector(p + "ffn_up.bias", hp.n_ff);
        l.ffn_down = b.matrix(p + "ffn_down.weight", hp.n_ff, hp.n_embd);
        l.ffn_down_b = b.vector(p + "ffn_down.bias", hp.n_embd);
    });
}

}  // namespace critdim::model
