// gemma2: embeddings scaled by sqrt(n_embd); RMSNorm before and after attention and the
// feed-forward (norm weights already hold Gemma's +1, as convert_hf_to_gguf writes them);
// GELU-tanh gated FFN; attention and final logit soft-capping; sliding-window attention on
// even layers; NEOX rope. The query scale follows llama.cpp: 1/sqrt(head_dim) for the 2B and
// 9B models, 1/sqrt(n_embd/n_head) for the 27B (46 blocks).
#include <cmath>

#include "model/binder.hpp"

namespace critdim::model {

void load_gemma2(Binder& b, Model& m) {
    HParams& hp = m.hp_;
    b.read_common(hp, "attention.layer_norm_rms_epsilon");
    hp.rope_type = RopeType::neox;
    hp.ffn_type = FfnType::gelu_gated;
    hp.embed_scale = std::sqrt(static_cast<float>(hp.n_embd));
    hp.sliding_window = static_cast<int64_t>(b.key_uint("attention.sliding_window", 4096));
    hp.attn_softcap = b.key_float("attn_logit_softcapping", 50.0f);
    hp.final_softcap = b.key_float("final_logit_softcapping", 30.0f);
    if (hp.n_layer == 46) hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.n_embd / hp.n_head));
    bind_llama_like(b, m);
    for_each_layer(m, [&](LayerWeights& l, const std::string& p, int64_t il) {
        l.post_attn_norm = b.vector(p + "post_attention_norm.weight", hp.n_embd);
        l.post_ffn_norm = b.vector(p + "post_ffw_norm.weight", hp.n_embd);
        l.sliding = il % 2 == 0;
    });
}

}  // namespace critdim::model
