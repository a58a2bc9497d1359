// What `critdim info --json` prints about a model, as a library function so that the command
// and the Python module (`Model.info`) show the same facts.
#include <map>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <variant>

#include "critdim/model.hpp"

namespace critdim::model {

namespace {

nlohmann::json to_json(const gguf::Value& v) {
    return std::visit(
        [](const auto& x) -> nlohmann::json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::vector<gguf::Value>>) {
                nlohmann::json a = nlohmann::json::array();
                for (const auto& item : x) a.push_back(to_json(item));
                return a;
            } else {
                return x;
            }
        },
        v.data);
}

}  // namespace

std::string describe_json(const Model& m) {
    const HParams& hp = m.hparams();
    const gguf::File& f = m.file();
    std::map<std::string, int> type_counts;
    uint64_t tensor_bytes = 0;
    for (const auto& t : f.tensors()) {
        type_counts[tensor_type_info(t.type_id)->name]++;
        tensor_bytes += t.n_bytes;
    }
    nlohmann::json j;
    j["path"] = m.path();
    j["file_bytes"] = f.file_size();
    j["gguf_version"] = f.version();
    j["name"] = f.get_string("general.name", "");
    j["architecture"] = hp.arch;
    j["n_vocab"] = hp.n_vocab;
    j["n_embd"] = hp.n_embd;
    j["n_layer"] = hp.n_layer;
    j["n_head"] = hp.n_head;
    j["n_head_kv"] = hp.n_head_kv;
    j["head_dim"] = hp.head_dim;
    j["n_ff"] = hp.n_ff;
    j["n_rot"] = hp.n_rot;
    j["n_ctx_train"] = hp.n_ctx_train;
    j["rope_base"] = hp.rope_base;
    j["norm_eps"] = hp.norm_eps;
    j["tied_output"] = hp.tied_output;
    if (hp.sliding_window) j["sliding_window"] = hp.sliding_window;
    if (hp.attn_softcap > 0) j["attn_softcap"] = hp.attn_softcap;
    if (hp.final_softcap > 0) j["final_softcap"] = hp.final_softcap;
    j["n_tensors"] = f.tensors().size();
    j["tensor_bytes"] = tensor_bytes;
    j["tensor_types"] = type_counts;
    int64_t n_params = 0;
    for (const auto& t : f.tensors()) n_params += t.n_elements();
    j["n_params"] = n_params;
    nlohmann::json tok;
    tok["model"] = f.get_string("tokenizer.ggml.model", "");
    tok["pre"] = f.get_string("tokenizer.ggml.pre", "");
    if (f.has("tokenizer.ggml.tokens")) tok["n_tokens"] = f.find("tokenizer.ggml.tokens")->items().size();
    for (const char* key : {"bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id"}) {
        const std::string k = std::string("tokenizer.ggml.") + key;
        if (f.has(k)) tok[key] = f.get_uint(k);
    }
    j["tokenizer"] = tok;
    j["chat_template"] = f.get_string("tokenizer.chat_template", "");
    // critdim's own keys: synthesis settings and, for planted models, the planted truth.
    nlohmann::json own = nlohmann::json::object();
    for (const auto& [key, value] : f.metadata())
        if (key.rfind("critdim.", 0) == 0) own[key] = to_json(value);
    j["critdim"] = own;
    return j.dump();
}

}  // namespace critdim::model
