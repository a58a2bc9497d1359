// critdim::Error -> critdim.Error, with the message ("WHERE: WHAT"), the category and the exit
// code the command would have returned (docs/errors.md).
#include "bindings.hpp"

namespace critdim::python {

void bind_errors(py::module_& m) {
    // Never destroyed: the interpreter may be gone by the time static destructors run.
    static auto& error_type = *new py::exception<Error>(m, "Error", PyExc_RuntimeError);
    error_type.doc() =
        "critdim's errors: str(e) is the message (WHERE: WHAT), e.kind the category (usage, input, mismatch, io, "
        "internal) and e.exit_code the code the critdim command exits with for it.";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const Error& e) {
            py::object exc = py::handle(error_type.ptr())(py::str(e.what()));
            exc.attr("kind") = error_kind_name(e.kind());
            exc.attr("exit_code") = exit_code(e.kind());
            PyErr_SetObject(error_type.ptr(), exc.ptr());
        }
    });
}

}  // namespace critdim::python
