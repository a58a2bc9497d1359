// qwen3: the llama block with per-head RMSNorm of q and k (weights attn_q_norm/attn_k_norm,
// applied after the split into heads and before rope), NEOX rotary pairs, no biases.
#include "model/binder.hpp"

namespace critdim::model {

void load_qwen3(Binder& b, Model& m) {
    HParams& hp = m.hp_;
    b.read_common(hp, "attention.layer_norm_rms_epsilon");
    hp.rope_type = RopeType::neox;
    bind_llama_like(b, m);
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        LayerWeights& l = m.w_.layers[static_cast<size_t>(il)];
        const std::string p = "blk." + std::to_string(il) + ".";
        l.q_norm = b.vector(p + "attn_q_norm.weight", hp.head_dim);
        l.k_norm = b.vector(p + "attn_k_norm.weight", hp.head_dim);
    }
}

}  // namespace critdim::model
