// critdim: one command, one file per subcommand; this file only dispatches and maps errors
// to exit codes (docs/errors.md).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.hpp"
#include "critdim/base.hpp"

int main(int argc, char** argv) {
    CLI::App app{"critdim: find, explain and steer the domain-critical dimensions of an LLM's residual stream"};
    app.set_version_flag("--version", CRITDIM_VERSION);
    app.require_subcommand(1);
    critdim::cli::register_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : critdim::exit_code(critdim::ErrorKind::usage);
    } catch (const critdim::Error& e) {
        std::fprintf(stderr, "critdim: error: %s\n", e.what());
        return critdim::exit_code(e.kind());
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "critdim: error: out of memory\n");
        return critdim::exit_code(critdim::ErrorKind::io);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "critdim: error: internal: %s\n", e.what());
        return critdim::exit_code(critdim::ErrorKind::internal);
    }
    return 0;
}
