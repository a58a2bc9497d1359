// The tokenizer's methods, defined once for critdim.Tokenizer and again on critdim.Model (which
// forwards to its own vocabulary), so that both read the same.
#pragma once

#include "bindings.hpp"

namespace critdim::python {

// get(self) -> const tokenizer::Tokenizer&
template <class Self, class Get>
void def_tokenizer_methods(py::class_<Self>& cls, Get get) {
    using namespace pybind11::literals;
    cls.def(
           "tokenize",
           [get](Self& self, const std::string& text, bool bos, bool special) {
               return get(self).encode(text, bos, special);
           },
           "text"_a, "bos"_a = true, "special"_a = false,
           "Token ids of text as llama.cpp gives them. bos: add BOS (and EOS, SEP) where the vocabulary asks for it; "
           "special: control tokens written in the text ('<|im_start|>') become their ids.")
        .def(
            "detokenize",
            [get](Self& self, const std::vector<int32_t>& ids, bool remove_special, bool unparse_special) {
                return py::bytes(get(self).detokenize(ids, remove_special, unparse_special))
                    .attr("decode")("utf-8", "replace");
            },
            "ids"_a, "remove_special"_a = false, "unparse_special"_a = false,
            "llama.cpp's llama_detokenize: the text of ids (control tokens shown only with unparse_special; "
            "remove_special drops the BOS/EOS the vocabulary adds). Invalid UTF-8 becomes U+FFFD.")
        .def(
            "decode",
            [get](Self& self, const std::vector<int32_t>& ids) {
                return py::bytes(get(self).decode(ids)).attr("decode")("utf-8", "replace");
            },
            "ids"_a, "The text of ids, losslessly: decode(tokenize(x, bos=False)) == x where the vocabulary can say x.")
        .def(
            "piece",
            [get](Self& self, int32_t id, bool special) { return py::bytes(get(self).token_to_piece(id, special)); },
            "id"_a, "special"_a = false,
            "The bytes token id stands for (bytes: a byte-fallback token may be half a character).");
}

}  // namespace critdim::python
