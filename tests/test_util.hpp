// Helpers shared by the tests: where ../shared is, temporary folders, running the command.
#pragma once

#include <string>
#include <vector>

namespace critdim::test {

// ../shared from the repository root, or $CRITDIM_SHARED. Throws (failing the test with a
// clear message) when it is missing: tests never skip silently.
const std::string& shared_dir();

// A fresh empty folder under the system temp dir, removed at exit of the test binary.
std::string temp_dir(const std::string& tag);

// Runs the critdim binary with args; returns its exit code and captures stdout/stderr.
struct RunResult {
    int exit_code;
    std::string out, err;
};
RunResult run_critdim(const std::vector<std::string>& args);
// Starts the critdim binary with stdout/stderr sent to the given files; returns its pid.
int spawn_critdim(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path);

std::string source_dir();
std::string critdim_binary();  // the critdim executable under test

}  // namespace critdim::test
