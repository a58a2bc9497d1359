// Model.run: one forward pass over a prompt, with activations captured straight into NumPy
// arrays by hook observers (the only copy), steering plans, and a Python callback hook.
#include "bindings.hpp"

namespace critdim::python {

namespace {

// One requested capture: every layer of a point ([n_layer, T, n_embd]) or one site ([T, n_embd]).
struct Capture {
    SitePattern pattern;
    std::string key;
    py::array_t<float> array;
    float* data = nullptr;
};

// Removes every hook from run()'s context on the way out, exceptions included, so that a failed
// run leaves the model as usable as before.
struct HooksCleared {
    model::Context& ctx;
    ~HooksCleared() { ctx.hooks().clear(); }
};

const char* kRunDoc = R"(One forward pass over a prompt (positions 0..T-1, a fresh cache).

tokens:    str (tokenized with BOS where the vocabulary adds one) or a sequence of token ids.
hooks:     sites to capture: "resid_post.*" (every layer), "attn_out.3", "embed", "final_norm";
           points: embed, resid_pre, attn_out, mlp_out, resid_post, final_norm.
steer:     a critdim.Plan or a list of them (applied in order, as --steer).
hook:      a Python callback fn(name, layer, x) called at each site of hook_at, where x is a
           writable float32 view [n_rows, n_embd] of the stream: changes made in place steer
           the model. x is valid only during the call (copy it to keep it). Slow next to a Plan:
           it takes the GIL at every site. An exception it raises ends the run and propagates.
hook_at:   sites of the callback (default "resid_post.*").
all_logits: True: logits [T, n_vocab]; False: only the last token's, [n_vocab].

Returns (logits, cache): cache maps "resid_post" to [n_layer, T, n_embd] for a point asked
for at every layer (and "resid_post.L" to its [T, n_embd] view), and "attn_out.3" to
[T, n_embd]. Plans and the callback run before the captures at a site, so captures see the
steered stream. The GIL is released during the forward pass.)";

}  // namespace

void bind_run(py::class_<PyModel>& cls) {
    using namespace pybind11::literals;
    cls.def(
        "run",
        [](PyModel& pm, py::handle tokens, py::handle hooks, py::handle steer, py::handle hook, py::handle hook_at,
           bool all_logits) {
            const model::HParams& hp = pm.model->hparams();
            const std::vector<int32_t> ids = token_ids(pm, tokens);
            if (ids.empty()) throw_usage("run: no tokens (an empty prompt, and the vocabulary adds no BOS)");
            const auto T = static_cast<int64_t>(ids.size());
            const int n_layer = static_cast<int>(hp.n_layer);

            // Everything Python-side is made before the GIL is released: the arrays the
            // observers fill, the plans, the callback's sites.
            std::vector<Capture> captures;
            for (const std::string& text : string_list(hooks)) {
                Capture c{parse_site_pattern(text), "", {}, nullptr};
                c.key = c.pattern.every_layer ? model::hook_point_name(c.pattern.point) : c.pattern.site.name();
                if (c.pattern.every_layer)
                    c.array = new_float_array({n_layer, T, hp.n_embd});
                else
                    c.array = new_float_array({T, hp.n_embd});
                c.data = c.array.mutable_data();
                captures.push_back(std::move(c));
            }
            const std::vector<steer::Plan> plans = plans_of(steer);
            std::optional<steer::Steering> steering;
            if (!plans.empty()) steering.emplace(*pm.model, plans);
            std::vector<model::HookSite> callback_sites;
            py::function callback;
            if (hook.is_none() && !hook_at.is_none()) throw_usage("run: hook_at needs hook=fn");
            if (!hook.is_none()) {
                callback = py::reinterpret_borrow<py::function>(hook);
                const std::vector<std::string> at =
                    hook_at.is_none() ? std::vector<std::string>{"resid_post.*"} : string_list(hook_at);
                for (const std::string& text : at)
                    for (const model::HookSite& s : expand(parse_site_pattern(text), n_layer))
                        callback_sites.push_back(s);
            }
            py::array_t<float> logits = all_logits ? new_float_array({T, hp.n_vocab}) : new_float_array({hp.n_vocab});
            float* logits_out = logits.mutable_data();

            {
                py::gil_scoped_release released;
                std::lock_guard<std::mutex> lock(pm.ctx_mutex);
                model::Context& ctx = pm.context_for(T);
                HooksCleared cleanup{ctx};
                if (steering) steering->attach(ctx);
                for (const model::HookSite& site : callback_sites) {
                    ctx.hooks().intervene(
                        site, [&callback, name = site.name(), layer = site.layer](const model::Rows& rows) {
                            py::gil_scoped_acquire gil;
                            // A view on the stream, not a copy: what the callback writes is the stream.
                            py::array x(py::dtype::of<float>(), {rows.n_rows, rows.n_embd}, {}, rows.data, py::none());
                            callback(name, layer, x);
                        });
                }
                for (Capture& c : captures) {
                    float* dst = c.data;
                    const bool stacked = c.pattern.every_layer;
                    auto copy_rows = [dst, T, stacked](const model::ConstRows& rows) {
                        // Rows arrive in chunks of the batch; positions say where each chunk goes.
                        const int64_t layer = stacked ? rows.site.layer : 0;
                        float* to = dst + (layer * T + rows.positions[0]) * rows.n_embd;
                        std::copy(rows.data, rows.data + rows.n_rows * rows.n_embd, to);
                    };
                    for (const model::HookSite& site : expand(c.pattern, n_layer)) ctx.hooks().observe(site, copy_rows);
                }
                ctx.decode(ids, all_logits);
                const int64_t V = hp.n_vocab;
                if (all_logits)
                    for (int64_t t = 0; t < T; ++t) std::copy(ctx.logits(t), ctx.logits(t) + V, logits_out + t * V);
                else
                    std::copy(ctx.logits(0), ctx.logits(0) + V, logits_out);
            }

            py::dict cache;
            for (const Capture& c : captures) {
                cache[py::str(c.key)] = c.array;
                if (c.pattern.every_layer)  // per-layer views of the stacked array, no copy
                    for (int l = 0; l < n_layer; ++l)
                        cache[py::str(model::HookSite{c.pattern.point, l}.name())] = c.array[py::int_(l)];
            }
            return py::make_tuple(logits, cache);
        },
        "tokens"_a, "hooks"_a = py::tuple(), "steer"_a = py::none(), "hook"_a = py::none(), "hook_at"_a = py::none(),
        "all_logits"_a = true, kRunDoc);
}

}  // namespace critdim::python
