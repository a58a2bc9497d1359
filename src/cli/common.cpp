#include "cli/common.hpp"

#include <charconv>
#include <cstdio>
#include <memory>

namespace critdim::cli {

std::vector<int32_t> parse_token_list(const std::string& text) {
    std::vector<int32_t> ids;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string item = text.substr(start, end - start);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        int32_t v = 0;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || v < 0)
            throw_usage("--tokens: '" + item + "' is not a token id (expected comma-separated non-negative integers)");
        ids.push_back(v);
        start = end + 1;
    }
    if (ids.empty()) throw_usage("--tokens: no token ids given");
    return ids;
}

void add_threads_option(CLI::App* cmd, int& threads) {
    threads = ThreadPool::default_threads();
    cmd->add_option("-t,--threads", threads, "worker threads (default: all cores)")->check(CLI::Range(1, 1024));
}

std::function<std::string(const std::string&)> chat_prompt_renderer(const tokenizer::Tokenizer& tok,
                                                                    const std::string& where, const std::string& system,
                                                                    const std::string& template_name) {
    std::string source;
    std::string origin = where + ": tokenizer.chat_template";
    if (!template_name.empty()) {
        source = tokenizer::builtin_chat_template(template_name);
        origin = "built-in chat template '" + template_name + "'";
    } else {
        source = tok.chat_template();
        if (source.empty())
            throw_usage(where +
                        " has no tokenizer.chat_template; name one with --chat-template (llama3, llama2, "
                        "chatml, gemma, phi3, mistral, smollm, deepseek-r1)");
    }
    auto chat = std::make_shared<const tokenizer::ChatTemplate>(source, origin);
    tokenizer::ChatRenderOptions options;
    if (tok.bos_id() >= 0) options.special_tokens["bos_token"] = tok.token_text(tok.bos_id());
    if (tok.eos_id() >= 0) options.special_tokens["eos_token"] = tok.token_text(tok.eos_id());
    return [chat, options, system](const std::string& user) {
        std::vector<tokenizer::ChatMessage> messages;
        if (!system.empty()) messages.push_back({"system", system});
        messages.push_back({"user", user});
        return chat->render(messages, options);
    };
}

std::string render_chat_prompt(const tokenizer::Tokenizer& tok, const std::string& where, const std::string& user,
                               const std::string& system, const std::string& template_name) {
    return chat_prompt_renderer(tok, where, system, template_name)(user);
}

void log(const std::string& message) { std::fprintf(stderr, "%s\n", message.c_str()); }

}  // namespace critdim::cli
