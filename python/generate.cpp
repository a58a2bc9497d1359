// Model.generate: the continuation of a prompt as an iterator of text pieces, one per sampled
// token, through the same decoding as `critdim generate` and `critdim serve` (server::Decoding).
#include "bindings.hpp"
#include "critdim/server.hpp"

namespace critdim::python {

namespace {

// One generation: its own context (so that run() may be called in between), plans and sampler.
class Generation {
public:
    Generation(PyModel& pm, std::vector<int32_t> prompt, const server::GenerationParams& gp,
               const std::vector<steer::Plan>& plans)
        : pm_(pm), prompt_(std::move(prompt)), decoding_(pm.tokenizer(), gp) {
        const model::HParams& hp = pm.model->hparams();
        const int64_t need = static_cast<int64_t>(prompt_.size()) + gp.max_tokens;
        if (need > hp.n_ctx_train)
            throw_usage("generate: prompt + generated = " + std::to_string(need) +
                        " tokens exceed the model's training context of " + std::to_string(hp.n_ctx_train));
        model::ContextParams cp;
        cp.n_ctx = need;
        cp.n_batch = std::min<int64_t>(512, static_cast<int64_t>(prompt_.size()));
        cp.n_threads = pm.n_threads;
        ctx_ = std::make_unique<model::Context>(*pm.model, cp);
        if (!plans.empty()) {
            steering_.emplace(*pm.model, plans);
            steering_->attach(*ctx_);
            steering_->set_prompt_length(0, static_cast<int64_t>(prompt_.size()));  // "prompt"/"generated" plans
        }
    }

    // The next token's text ("" while a character is incomplete); StopIteration at the end.
    std::string next() {
        if (decoding_.done()) throw py::stop_iteration();
        py::gil_scoped_release released;
        const int64_t V = pm_.model->hparams().n_vocab;
        if (!started_) {  // the prompt is decoded on the first next(), not when generate() is called
            ctx_->decode(prompt_, false);
            started_ = true;
        } else {
            ctx_->decode(std::span<const int32_t>(&last_, 1), false);
        }
        const server::Decoding::Step step = decoding_.next(ctx_->logits(0), V);
        last_ = step.token;
        return step.text;
    }

    const server::Decoding& decoding() const { return decoding_; }
    const std::vector<int32_t>& prompt() const { return prompt_; }

private:
    PyModel& pm_;
    std::vector<int32_t> prompt_;
    server::Decoding decoding_;
    std::unique_ptr<model::Context> ctx_;
    std::optional<steer::Steering> steering_;
    bool started_ = false;
    int32_t last_ = 0;
};

}  // namespace

void bind_generate(py::module_& m, py::class_<PyModel>& cls) {
    using namespace pybind11::literals;
    py::class_<Generation>(m, "Generation", "An iterator over the text pieces of a continuation (Model.generate).")
        .def("__iter__", [](Generation& g) -> Generation& { return g; })
        .def("__next__", [](Generation& g) { return py::bytes(g.next()).attr("decode")("utf-8", "replace"); })
        .def_property_readonly(
            "tokens", [](const Generation& g) { return g.decoding().tokens(); },
            "the sampled token ids so far (an end-of-generation token included)")
        .def_property_readonly("prompt_tokens", &Generation::prompt)
        .def_property_readonly(
            "text",
            [](const Generation& g) { return py::bytes(g.decoding().text()).attr("decode")("utf-8", "replace"); },
            "the text released so far")
        .def_property_readonly(
            "finish_reason",
            [](const Generation& g) { return server::finish_reason_name(g.decoding().finish_reason()); },
            "'stop' (end-of-generation token or stop string), 'length', or '' while running");

    cls.def(
        "generate",
        [](PyModel& pm, py::handle prompt, int64_t n, float temperature, uint64_t seed, py::handle steer, int top_k,
           float top_p, bool ignore_eos, std::vector<std::string> stop) {
            if (n < 0) throw_usage("generate: n must be 0 or more");
            std::vector<int32_t> ids = token_ids(pm, prompt);
            if (ids.empty()) throw_usage("generate: the prompt is empty (and the vocabulary adds no BOS)");
            server::GenerationParams gp;
            gp.max_tokens = n;
            gp.sampler.temperature = temperature;
            gp.sampler.seed = seed;
            gp.sampler.top_k = top_k;
            gp.sampler.top_p = top_p;
            gp.ignore_eos = ignore_eos;
            gp.stop = std::move(stop);
            return std::make_unique<Generation>(pm, std::move(ids), gp, plans_of(steer));
        },
        "prompt"_a, "n"_a = 64, "temperature"_a = 0.0f, "seed"_a = 0, "steer"_a = py::none(), "top_k"_a = 0,
        "top_p"_a = 1.0f, "ignore_eos"_a = false, "stop"_a = std::vector<std::string>{},
        // The generation uses the model: keep it alive as long as the iterator.
        py::keep_alive<0, 1>(),
        R"(The continuation of prompt (str: BOS added where the vocabulary wants it; or token ids,
e.g. m.chat(messages, tokenize=True)), as `critdim generate` makes it: an iterator of str, one
per sampled token (the text it completes; "" while a character is incomplete). Greedy at
temperature 0; sampled with seed otherwise. steer: a Plan or a list of Plans. Stops at an
end-of-generation token (unless ignore_eos), a stop string, or after n tokens.

    for piece in m.generate("Once upon a time", n=32): print(piece, end="")
)");
}

}  // namespace critdim::python
