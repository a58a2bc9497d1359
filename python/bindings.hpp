// The pieces of the Python module `critdim` (docs/python.md): each bind_* adds one part of the
// public C++ API to the module. The binding holds no logic of its own: it converts arguments,
// calls the library and hands results over as NumPy arrays.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "critdim/model.hpp"
#include "critdim/steer.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::python {

namespace py = pybind11;

void bind_errors(py::module_& m);
void bind_tokenizer(py::module_& m);
void bind_model(py::module_& m);  // Model: info, tokenize, chat
void bind_plan(py::module_& m);
void bind_analysis(py::module_& m);  // scan, find, load_stats, vector, synth

// A vocabulary, from a model or a vocabulary-only GGUF file (the file stays mapped as long as
// the tokenizer lives, whoever holds it).
struct PyTokenizer {
    std::shared_ptr<const gguf::File> file;
    std::shared_ptr<const tokenizer::Tokenizer> tok;
};

// critdim.Model: the mapped model, its tokenizer (loaded on first use) and the context that
// run() reuses between calls.
struct PyModel {
    std::unique_ptr<model::Model> model;
    int n_threads = 0;  // 0: every core
    std::shared_ptr<const tokenizer::Tokenizer> tok;
    // run()'s context, grown when a prompt does not fit; run() holds the mutex while it uses it
    // (taken with the GIL released, so that a callback hook can take the GIL back).
    std::unique_ptr<model::Context> ctx;
    std::mutex ctx_mutex;

    const tokenizer::Tokenizer& tokenizer();  // needs the GIL (first call loads it)
    model::Context& context_for(int64_t n_tokens);
};

void bind_run(py::class_<PyModel>& cls);                       // Model.run
void bind_generate(py::module_& m, py::class_<PyModel>& cls);  // Model.generate

// Token ids from a str (tokenized with BOS where the vocabulary adds one, no special tokens)
// or from any sequence of ints (a list, a NumPy array).
std::vector<int32_t> token_ids(PyModel& pm, py::handle tokens);

// Hook-site patterns: "resid_post.3", "embed", "final_norm", and "resid_post.*" or "resid_post"
// for every layer of a per-layer point. A bad name is critdim's usage error.
struct SitePattern {
    model::HookPoint point;
    bool every_layer = false;
    model::HookSite site;  // when !every_layer
};
SitePattern parse_site_pattern(const std::string& text);
std::vector<model::HookSite> expand(const SitePattern& p, int n_layer);
std::vector<std::string> string_list(py::handle str_or_list);  // "a" or ["a", "b"]

// Python objects (dicts, lists, numbers) as JSON through Python's own json module, and back.
nlohmann::json to_json(py::handle obj);
py::object from_json(const std::string& text);

// A float32 array of this shape, C order, owned by NumPy (filled by the caller).
py::array_t<float> new_float_array(const std::vector<py::ssize_t>& shape);
// A read-only NumPy view of `n` elements at `data`, keeping `owner` alive as the array's base.
template <class T>
py::array readonly_view(const T* data, std::vector<py::ssize_t> shape, std::shared_ptr<const void> owner) {
    auto* keep = new std::shared_ptr<const void>(std::move(owner));
    py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
    py::array a(py::dtype::of<T>(), std::move(shape), {}, data, base);
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return a;
}

// The steering plans of a `steer=` argument: None, a Plan, or a list of Plans (composed in order).
std::vector<steer::Plan> plans_of(py::handle steer);

}  // namespace critdim::python
