// The Python module `critdim`: critdim's engine, hooks, scans and steering from Python with
// NumPy (docs/python.md). One file per part of the API; this one only assembles them.
#include "bindings.hpp"

PYBIND11_MODULE(critdim, m) {
    namespace cp = critdim::python;
    m.doc() =
        "critdim: run GGUF models on the CPU, hook their residual stream, find the critical dimensions and steer "
        "through them (docs/python.md).";
    m.attr("__version__") = CRITDIM_VERSION;
    cp::bind_errors(m);
    cp::bind_tokenizer(m);
    cp::bind_plan(m);
    cp::bind_model(m);
    cp::bind_analysis(m);
}
