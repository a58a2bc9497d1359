// critdim.Tokenizer: a vocabulary on its own (vocabulary-only GGUF files, or a model's), with
// llama.cpp's ids (docs/tokenizer.md).
#include "bindings.hpp"
#include "tokenizer_methods.hpp"

namespace critdim::python {

void bind_tokenizer(py::module_& m) {
    using namespace pybind11::literals;
    py::class_<PyTokenizer> cls(m, "Tokenizer",
                                "The vocabulary of a GGUF file (a model or a vocabulary-only file such as "
                                "../shared/vocab/ggml-vocab-gpt-2.gguf).");
    cls.def(py::init([](const std::string& path) {
                std::shared_ptr<const gguf::File> file = gguf::File::open(path);
                std::shared_ptr<const tokenizer::Tokenizer> tok = tokenizer::Tokenizer::from_gguf(*file);
                return PyTokenizer{std::move(file), std::move(tok)};
            }),
            "path"_a, py::call_guard<py::gil_scoped_release>());
    def_tokenizer_methods(cls, [](PyTokenizer& t) -> const tokenizer::Tokenizer& { return *t.tok; });
    cls.def_property_readonly("n_vocab", [](const PyTokenizer& t) { return t.tok->n_vocab(); })
        .def_property_readonly(
            "bos_id", [](const PyTokenizer& t) { return t.tok->bos_id(); }, "-1 when none")
        .def_property_readonly("eos_id", [](const PyTokenizer& t) { return t.tok->eos_id(); })
        .def_property_readonly("adds_bos", [](const PyTokenizer& t) { return t.tok->adds_bos(); })
        .def_property_readonly(
            "model", [](const PyTokenizer& t) { return t.tok->model_name(); },
            "llama (SentencePiece), gpt2 (byte-level BPE) or bert (WordPiece)")
        .def_property_readonly("pre", [](const PyTokenizer& t) { return t.tok->pre_name(); })
        .def_property_readonly("chat_template", [](const PyTokenizer& t) { return t.tok->chat_template(); })
        .def(
            "is_eog", [](const PyTokenizer& t, int32_t id) { return t.tok->is_eog(id); }, "id"_a,
            "True for end-of-generation tokens (EOS, EOT, ...)")
        .def(
            "token_text", [](const PyTokenizer& t, int32_t id) { return t.tok->token_text(id); }, "id"_a,
            "The token as the vocabulary stores it ('▁the', 'Ġthe', '<0x0A>').")
        .def(
            "find_token", [](const PyTokenizer& t, const std::string& text) { return t.tok->find_token(text); },
            "text"_a, "The id of a token text, or -1.");
}

}  // namespace critdim::python
