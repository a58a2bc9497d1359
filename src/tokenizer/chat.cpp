// Chat template families: recognising a template by its markers, and critdim's own minimal
// template per family for models that carry none (or to override theirs).
#include <map>
#include <memory>

#include "critdim/base.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::tokenizer {

std::string chat_template_family(std::string_view src) {
    auto has = [&](std::string_view marker) { return src.find(marker) != std::string_view::npos; };
    if (has("<|im_start|>")) return "chatml";
    if (has("<|start_header_id|>")) return "llama3";
    if (has("<start_of_turn>")) return "gemma";
    if (has("<|assistant|>") && has("<|end|>")) return "phi3";
    if (has("<\xef\xbd\x9c"
            "Assistant\xef\xbd\x9c>"))
        return "deepseek-r1";
    if (has("[INST]")) return has("<<SYS>>") ? "llama2" : "mistral";
    return {};
}

namespace {

const std::map<std::string, std::string, std::less<>>& builtins() {
    static const std::map<std::string, std::string, std::less<>> templates = {
        {"chatml",
         "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
         "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"},
        {"llama3",
         "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
         "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"},
        {"gemma",
         "{{ bos_token }}{% set ns = namespace(prefix='') %}{% for message in messages %}"
         "{% if message['role'] == 'system' %}{% set ns.prefix = message['content'] + '\\n\\n' %}"
         "{% else %}{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\\n' "
         "+ ns.prefix + message['content'] | trim + '<end_of_turn>\\n' }}{% set ns.prefix = '' %}{% endif %}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"},
        {"phi3",
         "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"},
        {"mistral",
         "{{ bos_token }}{% set ns = namespace(system='') %}{% for message in messages %}"
         "{% if message['role'] == 'system' %}{% set ns.system = message['content'] + '\\n\\n' %}"
         "{% elif message['role'] == 'user' %}{{ '[INST] ' + ns.system + message['content'] + ' [/INST]' }}"
         "{% set ns.system = '' %}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"},
        {"llama2",
         "{% set ns = namespace(system='') %}{% for message in messages %}"
         "{% if message['role'] == 'system' %}{% set ns.system = '<<SYS>>\\n' + message['content'] + "
         "'\\n<</SYS>>\\n\\n' %}{% elif message['role'] == 'user' %}{{ bos_token + '[INST] ' + ns.system + "
         "message['content'] | trim + ' [/INST]' }}{% set ns.system = '' %}"
         "{% else %}{{ ' ' + message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}"},
        {"deepseek-r1",
         "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}"
         "{% elif message['role'] == 'user' %}{{ '<\xef\xbd\x9cUser\xef\xbd\x9c>' + message['content'] }}"
         "{% else %}{{ '<\xef\xbd\x9c"
         "Assistant\xef\xbd\x9c>' + message['content'] + eos_token }}{% endif %}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<\xef\xbd\x9c"
         "Assistant\xef\xbd\x9c><think>\\n' }}{% endif %}"},
    };
    return templates;
}

}  // namespace

const std::string& builtin_chat_template(std::string_view family) {
    if (family == "smollm" || family == "qwen") family = "chatml";
    const auto& t = builtins();
    auto it = t.find(family);
    if (it == t.end()) {
        std::string known;
        for (const auto& [name, text] : t) known += (known.empty() ? "" : ", ") + name;
        throw_usage("--chat-template: unknown family '" + std::string(family) + "' (known: " + known + ", smollm)");
    }
    return it->second;
}

std::function<std::string(const std::string&)> user_prompt_renderer(const Tokenizer& tok, const std::string& where,
                                                                    const std::string& system,
                                                                    const std::string& template_name) {
    std::string source;
    std::string origin = where + ": tokenizer.chat_template";
    if (!template_name.empty()) {
        source = builtin_chat_template(template_name);
        origin = "built-in chat template '" + template_name + "'";
    } else {
        source = tok.chat_template();
        if (source.empty())
            throw_usage(where +
                        " has no tokenizer.chat_template; name one with --chat-template (llama3, llama2, "
                        "chatml, gemma, phi3, mistral, smollm, deepseek-r1)");
    }
    auto chat = std::make_shared<const ChatTemplate>(source, origin);
    ChatRenderOptions options;
    if (tok.bos_id() >= 0) options.special_tokens["bos_token"] = tok.token_text(tok.bos_id());
    if (tok.eos_id() >= 0) options.special_tokens["eos_token"] = tok.token_text(tok.eos_id());
    return [chat, options, system](const std::string& user) {
        std::vector<ChatMessage> messages;
        if (!system.empty()) messages.push_back({"system", system});
        messages.push_back({"user", user});
        return chat->render(messages, options);
    };
}

std::string render_user_prompt(const Tokenizer& tok, const std::string& where, const std::string& user,
                               const std::string& system, const std::string& template_name) {
    return user_prompt_renderer(tok, where, system, template_name)(user);
}

}  // namespace critdim::tokenizer
