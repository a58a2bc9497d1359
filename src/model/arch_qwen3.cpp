// qwen3: the llama block with per-head RMSNorm of q and k (weights attn_q_norm/attn_k_norm,
// applied after the split into heads and before rope), NEOX rotary pairs, no biases.
#include "model/binder.hpp"

namespace critdim::model {

void load_qwen3(Binder& b, Model& m) {
    HParams& hp = m.hp_;
    b.read_common(hp, "attention.layer_norm_rms_epsilon");
    hp.rope_type = RopeType::neox;
    bind_llama_like(b, m);
    for_each_layer(m, [&](LayerWeights& l, const std::string& p, int64_t) {
        l.q_norm = b.vector(p + "attn_q_norm.weight", hp.head_dim);
        l.k_norm = b.vector(p + "attn_k_norm.weight", hp.head_dim);
    });
}

}  // namespace critdim::model
