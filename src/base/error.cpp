// Error categories and their exit codes (documented in docs/errors.md).
#include "critdim/base.hpp"

namespace critdim {

int exit_code(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::usage:
            return 2;
        case ErrorKind::input:
            return 3;
        case ErrorKind::mismatch:
            return 4;
        case ErrorKind::io:
            return 5;
        case ErrorKind::internal:
            return 70;
    }
    return 70;
}

const char* error_kind_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::usage:
            return "usage";
        case ErrorKind::input:
            return "input";
        case ErrorKind::mismatch:
            return "mismatch";
        case ErrorKind::io:
            return "io";
        case ErrorKind::internal:
            return "internal";
    }
    return "internal";
}

static std::string join_where_what(std::string_view where, std::string_view what) {
    if (where.empty()) return std::string(what);
    std::string s(where);
    s += ": ";
    s += what;
    return s;
}

Error::Error(ErrorKind kind, std::string_view where, std::string_view what)
    : std::runtime_error(join_where_what(where, what)), kind_(kind) {}

void throw_input(std::string_view where, std::string_view what) { throw Error(ErrorKind::input, where, what); }
void throw_io(std::string_view where, std::string_view what) { throw Error(ErrorKind::io, where, what); }
void throw_usage(std::string_view what) { throw Error(ErrorKind::usage, "", what); }

}  // namespace critdim
