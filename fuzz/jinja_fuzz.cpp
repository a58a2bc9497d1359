// The chat-template interpreter on arbitrary template text (a GGUF file from anywhere carries
// one), rendered with a short conversation.
#include "critdim/tokenizer.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string source(reinterpret_cast<const char*>(data), size);
    critdim::fuzz::expect_only_critdim_errors([&] {
        const critdim::tokenizer::ChatTemplate chat(source, "fuzz");
        critdim::tokenizer::ChatRenderOptions options;
        options.special_tokens["bos_token"] = "<s>";
        options.special_tokens["eos_token"] = "</s>";
        const std::vector<critdim::tokenizer::ChatMessage> messages = {
            {"system", "Be brief."}, {"user", "hi"}, {"assistant", "hello"}, {"user", "bye"}};
        (void)chat.render(messages, options);
    });
    return 0;
}
