// llama: Llama 2/3, Mistral, SmolLM, TinyStories. RMSNorm, SwiGLU, grouped-query attention,
// rotary embeddings on adjacent pairs (convert_hf_to_gguf permutes Q/K rows for that),
// optional Llama-3.1 rope factors (rope_freqs.weight) and linear rope scaling.
#include "model/binder.hpp"

namespace critdim::model {

void load_llama(Binder& b, Model& m) {
    HParams& hp = m.hp_;
    b.read_common(hp, "attention.layer_norm_rms_epsilon");
    hp.rope_type = RopeType::norm;
    hp.norm_type = NormType::rms;
    hp.ffn_type = FfnType::silu_gated;
    bind_llama_like(b, m);
    if (b.has("rope_freqs.weight")) m.w_.rope_freqs = b.vector("rope_freqs.weight", hp.n_rot / 2);
}

}  // namespace critdim::model
