// phi3: fused attn_qkv [q; k; v] and fused ffn_up [gate; up] (gate first), RMSNorm, NEOX
// rope, sliding-window attention on every layer when the file sets a window.
#include "model/binder.hpp"

namespace critdim::model {

void load_phi3(Binder& b, Model& m) {
    HParams& hp = m.hp_;
    b.read_common(hp, "attention.layer_norm_rms_epsilon");
    hp.rope_type = RopeType::neox;
    hp.ffn_type = FfnType::silu_gated_fused;
    hp.sliding_window = static_cast<int64_t>(b.key_uint("attention.sliding_window", 0));
    Weights& w = m.w_;
    w.token_embd = b.matrix("token_embd.weight", hp.n_embd, hp.n_vocab);
    w.output_norm = b.vector("output_norm.weight", hp.n_embd);
    hp.tied_output = !b.has("output.weight");
    w.output = hp.tied_output ? w.token_embd : b.matrix("output.weight", hp.n_embd, hp.n_vocab);
    if (b.has("rope_factors_long.weight") || b.has("rope_factors_short.weight"))
        throw Error(ErrorKind::input, b.file().path(),
                    "phi3 with LongRoPE factors (rope_factors_long/short) is not supported yet");
    const int64_t qkv_rows = hp.n_head * hp.head_dim + 2 * hp.kv_dim();
    for_each_layer(m, [&](LayerWeights& l, const std::string& p, int64_t) {
        l.attn_norm = b.vector(p + "attn_norm.weight", hp.n_embd);
        l.wqkv = b.matrix(p + "attn_qkv.weight", hp.n_embd, qkv_rows);
        l.wo = b.matrix(p + "attn_output.weight", hp.n_head * hp.head_dim, hp.n_embd);
        l.ffn_norm = b.vector(p + "ffn_norm.weight", hp.n_embd);
        l.ffn_up = b.matrix(p + "ffn_up.weight", hp.n_embd, 2 * hp.n_ff);
        l.ffn_down = b.matrix(p + "ffn_down.weight", hp.n_ff, hp.n_embd);
        l.sliding = hp.sliding_window > 0;
    });
}

}  // namespace critdim::model
