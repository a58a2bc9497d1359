// critdim tokenize: the token ids (and pieces) of a text, as llama-tokenize prints them.
#include <cstdio>
#include <string>

#include "cli/commands.hpp"
#include "critdim/base.hpp"
#include "critdim/gguf.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::cli {

namespace {

struct TokenizeOptions {
    std::string model, text, file;
    bool no_bos = false, parse_special = false, ids_only = false;
};

// Control characters and backslashes escaped, so each piece prints on one line.
std::string printable(const std::string& piece) {
    std::string out;
    for (char c : piece) {
        switch (c) {
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\\':
                out += "\\\\";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out;
}

void run_tokenize(const TokenizeOptions& o) {
    const std::string text = o.file.empty() ? o.text : read_text_file(o.file);
    const auto file = gguf::File::open(o.model);
    const auto tok = tokenizer::Tokenizer::from_gguf(*file);
    const std::vector<int32_t> ids = tok->encode(text, !o.no_bos, o.parse_special);
    std::string out;
    if (o.ids_only) {
        for (size_t i = 0; i < ids.size(); ++i) {
            if (i) out += ' ';
            out += std::to_string(ids[i]);
        }
        out += '\n';
    } else {
        for (int32_t id : ids) {
            out += std::to_string(id);
            out += "\t'";
            out += printable(tok->token_to_piece(id, true));
            out += "'\n";
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void register_tokenize(CLI::App& app) {
    auto opts = std::make_shared<TokenizeOptions>();
    CLI::App* cmd = app.add_subcommand("tokenize", "token ids of a text with the model's tokenizer (as llama.cpp)");
    cmd->add_option("MODEL", opts->model, "GGUF model or vocabulary")->required();
    auto* text = cmd->add_option("--text", opts->text, "the text");
    auto* file = cmd->add_option("--file", opts->file, "read the text from a file (bytes as they are)");
    text->excludes(file);
    file->excludes(text);
    cmd->add_flag("--no-bos", opts->no_bos, "never add BOS (nor EOS/SEP), even where the vocabulary adds it");
    cmd->add_flag("--parse-special", opts->parse_special, "turn special-token text such as <|im_start|> into its id");
    cmd->add_flag("--ids-only", opts->ids_only, "print only the ids, separated by single spaces, on one line");
    cmd->callback([opts, text, file] {
        if (text->count() == 0 && file->count() == 0) throw_usage("tokenize: give --text T or --file F");
        run_tokenize(*opts);
    });
}

}  // namespace critdim::cli
