// Shared by the fuzz targets: the bytes of one input as a file (every reader of critdim takes a
// path), and the rule that only critdim::Error may escape a reader.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "critdim/base.hpp"

namespace critdim::fuzz {

// A file in /dev/shm (or $TMPDIR) private to this process, rewritten for every input.
inline const std::string& input_path(const char* suffix) {
    static const std::string path = [&] {
        const char* dir = std::getenv("CRITDIM_FUZZ_TMP");
        std::string d = dir ? dir : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        return d + "/critdim-fuzz-" + std::to_string(getpid()) + suffix;
    }();
    return path;
}

inline const std::string& write_input(const uint8_t* data, size_t size, const char* suffix) {
    const std::string& path = input_path(suffix);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
    return path;
}

// ../shared as the tests find it: $CRITDIM_SHARED, else next to the repository.
inline std::string shared_dir() {
    const char* env = std::getenv("CRITDIM_SHARED");
    return env && *env ? env : std::string(CRITDIM_SOURCE_DIR) + "/../shared";
}

// Runs a reader: critdim::Error is the documented way to refuse input; anything else (another
// exception, a crash, a sanitizer report) is a finding.
template <class F>
void expect_only_critdim_errors(F&& f) {
    try {
        f();
    } catch (const critdim::Error&) {
    }
}

}  // namespace critdim::fuzz
