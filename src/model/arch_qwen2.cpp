// qwen2: Qwen 2 / 2.5. The llama block with biases on q, k and v, and NEOX rotary pairs.
#include "model/binder.hpp"

namespace critdim::model {

void load_qwen2(Binder& b, Model& m) {
    HParams& hp = m.hp_;
    b.read_common(hp, "attention.layer_norm_rms_epsilon");
    hp.rope_type = RopeType::neox;
    bind_llama_like(b, m);
    for_each_layer(m, [&](LayerWeights& l, const std::string& p, int64_t) {
        l.bq = b.vector(p + "attn_q.bias", hp.n_head * hp.head_dim);
        l.bk = b.vector(p + "attn_k.bias", hp.kv_dim());
        l.bv = b.vector(p + "attn_v.bias", hp.kv_dim_v());
    });
}

}  // namespace critdim::model
