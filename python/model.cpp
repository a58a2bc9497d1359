// critdim.Model: a GGUF model mapped once; its metadata, vocabulary and chat template.
// run() is in run.cpp, generate() in generate.cpp.
#include "bindings.hpp"
#include "critdim/server.hpp"
#include "tokenizer_methods.hpp"

namespace critdim::python {

const tokenizer::Tokenizer& PyModel::tokenizer() {
    if (!tok) tok = tokenizer::Tokenizer::from_gguf(model->file());
    return *tok;
}

model::Context& PyModel::context_for(int64_t n_tokens) {
    // One forward pass per run (n_batch = n_tokens, as `critdim dump`); the context only grows,
    // so a loop over prompts allocates nothing after its longest prompt.
    if (!ctx || ctx->n_ctx() < n_tokens) {
        ctx.reset();
        model::ContextParams cp;
        cp.n_ctx = n_tokens;
        cp.n_batch = n_tokens;
        cp.n_threads = n_threads;
        ctx = std::make_unique<model::Context>(*model, cp);
    }
    ctx->clear();
    return *ctx;
}

void bind_model(py::module_& m) {
    using namespace pybind11::literals;
    py::class_<PyModel> cls(m, "Model", R"(A GGUF model, mapped (weights are never copied).

    m = critdim.Model("model.gguf", threads=2)
    logits, cache = m.run("Hello", hooks=["resid_post.*"])
)");
    cls.def(py::init([](const std::string& path, int threads) {
                if (threads < 0) throw_usage("threads: must be 0 (every core) or more, not " + std::to_string(threads));
                auto pm = std::make_unique<PyModel>();
                pm->model = model::Model::load(path);
                pm->n_threads = threads;
                return pm;
            }),
            "path"_a, "threads"_a = 0, py::call_guard<py::gil_scoped_release>(),
            "Loads and checks the model; threads = 0 uses every core (as the command's -t).");
    cls.def_property_readonly(
           "info", [](PyModel& pm) { return from_json(model::describe_json(*pm.model)); },
           "The facts `critdim info --json` prints: architecture, sizes, tensor types, tokenizer, chat template, "
           "critdim.* keys (for planted models, the planted truth).")
        .def("__repr__",
             [](PyModel& pm) {
                 const model::HParams& hp = pm.model->hparams();
                 return "<critdim.Model " + pm.model->path() + ": " + hp.arch + ", " + std::to_string(hp.n_layer) +
                        " layers, n_embd " + std::to_string(hp.n_embd) + ">";
             })
        .def_property_readonly("path", [](PyModel& pm) { return pm.model->path(); })
        .def_property_readonly("n_layer", [](PyModel& pm) { return pm.model->hparams().n_layer; })
        .def_property_readonly("n_embd", [](PyModel& pm) { return pm.model->hparams().n_embd; })
        .def_property_readonly("n_vocab", [](PyModel& pm) { return pm.model->hparams().n_vocab; })
        .def_property_readonly("n_ctx_train", [](PyModel& pm) { return pm.model->hparams().n_ctx_train; })
        .def_property_readonly("threads", [](PyModel& pm) { return pm.n_threads; })
        .def_property_readonly(
            "tokenizer",
            [](PyModel& pm) {
                pm.tokenizer();
                return PyTokenizer{nullptr, pm.tok};
            },
            "The model's vocabulary as a critdim.Tokenizer.");
    def_tokenizer_methods(cls, [](PyModel& pm) -> const tokenizer::Tokenizer& { return pm.tokenizer(); });
    cls.def(
        "chat",
        [](PyModel& pm, const std::vector<std::map<std::string, std::string>>& messages, bool tokenize,
           const std::string& template_name) -> py::object {
            std::vector<tokenizer::ChatMessage> turns;
            for (const auto& msg : messages) {
                const auto role = msg.find("role"), content = msg.find("content");
                if (role == msg.end() || content == msg.end())
                    throw_usage("chat: every message needs 'role' and 'content'");
                turns.push_back({role->second, content->second});
            }
            const server::ChatFormatter formatter(pm.tokenizer(), pm.model->path(), template_name);
            const std::string text = formatter.render(turns);
            // The template writes BOS itself where the model wants it; its special tokens are parsed.
            if (tokenize) return py::cast(pm.tokenizer().encode(text, false, true));
            return py::str(text);
        },
        "messages"_a, "tokenize"_a = false, "template"_a = "",
        R"(The conversation rendered by the model's chat template, with the generation prompt:
messages = [{"role": "user", "content": "Hi"}]. tokenize=True returns the token ids instead
(no BOS added, special tokens parsed: the template wrote them). template: a built-in template
(llama3, llama2, chatml, gemma, phi3, mistral, smollm, deepseek-r1) instead of the model's.)");
    bind_run(cls);
    bind_generate(m, cls);
}

}  // namespace critdim::python
