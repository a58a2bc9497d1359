#include "tokenizer/tok_test_util.hpp"

#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>

#include "critdim/base.hpp"
#include "test_util.hpp"

namespace critdim::test {

std::vector<VocabCase> read_vocab_cases(const std::string& inp_path, const std::string& out_path) {
    const std::string inp = read_text_file(inp_path), outp = read_text_file(out_path);
    static const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    size_t pos = 0;
    while (pos < inp.size()) {
        const size_t next = inp.find(sep, pos);
        if (next == std::string::npos) {
            texts.push_back(inp.substr(pos));
            break;
        }
        texts.push_back(inp.substr(pos, next - pos));
        pos = next + sep.size();
    }
    std::vector<std::vector<int32_t>> ids;
    std::istringstream lines(outp);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream ls(line);
        std::vector<int32_t> row;
        long v;
        while (ls >> v) row.push_back(static_cast<int32_t>(v));
        ids.push_back(std::move(row));
    }
    if (ids.size() != texts.size())
        throw std::runtime_error(out_path + ": " + std::to_string(ids.size()) + " lines for " +
                                 std::to_string(texts.size()) + " cases");
    std::map<std::string, std::vector<int32_t>> unique;
    for (size_t i = 0; i < texts.size(); ++i) unique.emplace(texts[i], ids[i]);
    std::vector<VocabCase> cases;
    for (auto& [t, i] : unique) cases.push_back({t, i});
    return cases;
}

std::shared_ptr<const tokenizer::Tokenizer> load_tokenizer(const std::string& gguf_path) {
    static std::map<std::string, std::shared_ptr<const tokenizer::Tokenizer>> cache;
    auto it = cache.find(gguf_path);
    if (it != cache.end()) return it->second;
    auto file = gguf::File::open(gguf_path);
    std::shared_ptr<const tokenizer::Tokenizer> tok = tokenizer::Tokenizer::from_gguf(*file);
    cache.emplace(gguf_path, tok);
    return tok;
}

const std::string& more_vocab_dir() {
    static const std::string dir = [] {
        const std::string d = temp_dir("vocab-more");
        const std::string cmd = "tar -xJf '" + shared_dir() + "/vocab/ggml-vocab-more.tar.xz' -C '" + d + "'";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("could not unpack: " + cmd);
        return d;
    }();
    return dir;
}

std::string ids_to_string(const std::vector<int32_t>& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i) s += ' ';
        s += std::to_string(ids[i]);
    }
    return s + "]";
}

std::string escape_text(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '"': out += "\\\""; break;
            default: out += c;
        }
    }
    return out + "\"";
}

}  // namespace critdim::test
