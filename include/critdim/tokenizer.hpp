// critdim tokenizer: the vocabularies GGUF files carry (SentencePiece-style `llama`, byte-level
// BPE `gpt2` with a table of pre-tokenizers, WordPiece `bert`), special tokens, detokenization
// and chat templates. The reference is llama.cpp (docs/tokenizer.md): the same text gives the
// same ids, token for token.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "critdim/base.hpp"
#include "critdim/gguf.hpp"

namespace critdim::tokenizer {

struct Vocab;  // src/tokenizer/vocab.hpp

class Tokenizer {
public:
    // Reads tokenizer.ggml.* from the file; throws Error(input) naming the file and the key.
    static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    // add_bos is llama.cpp's add_special: BOS (and EOS, WordPiece's SEP) are added only where
    // the vocabulary asks for them (tokenizer.ggml.add_bos_token, llama.cpp's defaults).
    // parse_special: control tokens written in the text ("<|im_start|>") become their ids;
    // user-defined tokens are always matched, as in llama.cpp. Invalid UTF-8 never throws.
    std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;

    bool adds_bos() const;
    bool adds_eos() const;
    int32_t bos_id() const;  // -1 when the vocabulary has none
    int32_t eos_id() const;
    int32_t eot_id() const;
    int32_t n_vocab() const;
    bool is_eog(int32_t id) const;      // end-of-generation tokens (eos, eot, eom, ...)
    bool is_control(int32_t id) const;  // control or unknown: rendered only when asked

    // The bytes a token stands for, as llama.cpp's common_token_to_piece: control tokens are
    // empty unless render_special; a byte-fallback token is one byte (maybe half a character).
    std::string token_to_piece(int32_t id, bool render_special) const;
    // The text of the ids, losslessly: pieces concatenated, control tokens dropped, the
    // SentencePiece space prefix removed from the first text token. decode(encode(x)) == x
    // whenever the vocabulary can represent x.
    std::string decode(std::span<const int32_t> ids) const;
    // llama.cpp's llama_detokenize, cleanup of " ," / " 's" included for the vocabularies
    // that ask for it.
    std::string detokenize(std::span<const int32_t> ids, bool remove_special, bool unparse_special) const;

    const std::string& model_name() const;  // "llama", "gpt2", "bert"
    const std::string& pre_name() const;    // tokenizer.ggml.pre, "default" when absent
    // The token's text as stored in the vocabulary ("▁the", "Ġthe", "<0x0A>").
    const std::string& token_text(int32_t id) const;
    // The id of a token text, or -1.
    int32_t find_token(std::string_view text) const;
    // tokenizer.chat_template, empty when absent.
    const std::string& chat_template() const;

    const Vocab& vocab() const { return *vocab_; }

private:
    explicit Tokenizer(std::unique_ptr<Vocab> vocab);
    std::unique_ptr<Vocab> vocab_;
};

// Streams pieces into UTF-8-complete text: push(id) returns the bytes that are now complete
// characters; a character split across byte-fallback tokens is held until its last byte.
// Bytes that can never complete a character are released as they are (never dropped).
class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& tok, bool render_special = false);
    std::string push(int32_t id);
    // Whatever is still held (an incomplete character at the end of the stream).
    std::string flush();

private:
    std::string take_complete();
    const Tokenizer& tok_;
    bool render_special_;
    std::string pending_;
};

// ---------------------------------------------------------------------------------------------
// Chat templates: tokenizer.chat_template is Jinja; critdim interprets the subset that real
// templates use (docs/tokenizer.md), with the environment Hugging Face transformers uses
// (trim_blocks, lstrip_blocks, loop controls, raise_exception).

struct ChatMessage {
    std::string role;     // "system", "user", "assistant", ...
    std::string content;
};

struct ChatRenderOptions {
    bool add_generation_prompt = true;
    // bos_token, eos_token, ... as the template sees them; a name not given is undefined.
    std::map<std::string, std::string> special_tokens;
};

// A template's own raise_exception("...") or a runtime error; message() is the text alone.
class ChatTemplateError : public Error {
public:
    ChatTemplateError(std::string_view where, std::string message);
    const std::string& message() const { return message_; }

private:
    std::string message_;
};

class ChatTemplate {
public:
    // Parses; a syntax error or an unsupported construct is Error(input) naming `where`
    // (e.g. "model.gguf: tokenizer.chat_template") and the line.
    ChatTemplate(std::string_view source, std::string where = "chat template");
    ~ChatTemplate();
    ChatTemplate(ChatTemplate&&) noexcept;
    ChatTemplate& operator=(ChatTemplate&&) noexcept;

    std::string render(std::span<const ChatMessage> messages, const ChatRenderOptions& options) const;

    struct Program;

private:
    std::unique_ptr<Program> program_;
};

// The family a template belongs to, from its markers: "llama3", "chatml", "gemma", "phi3",
// "mistral", "llama2", "deepseek-r1"; empty when none is recognised.
std::string chat_template_family(std::string_view source);

// critdim's own minimal template for a family name (the families above, plus "smollm" as
// ChatML), for models without a template or to override theirs; throws Error(usage) naming
// the known families when the name is unknown.
const std::string& builtin_chat_template(std::string_view family);

// One user turn (after an optional system turn) with the generation prompt, rendered by the
// model's template or, when `template_name` is not empty, by that built-in one; bos_token and
// eos_token are the vocabulary's. A model without a template and no override is a usage error
// naming `where`. Tokenize the result with encode(text, false, true). The renderer parses the
// template once and renders any number of user texts.
std::function<std::string(const std::string&)> user_prompt_renderer(const Tokenizer& tok, const std::string& where,
                                                                    const std::string& system,
                                                                    const std::string& template_name);
std::string render_user_prompt(const Tokenizer& tok, const std::string& where, const std::string& user,
                               const std::string& system, const std::string& template_name);

}  // namespace critdim::tokenizer
