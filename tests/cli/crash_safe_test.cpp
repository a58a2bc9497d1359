// Crash-safe outputs: a writer killed with SIGKILL while it writes leaves the old file or the new
// one under the output name, never a torn one. The kill is timed by watching the writer's
// temporary file grow (".NAME.tmp.XXXXXX" next to the output), so most kills land mid-write.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "test_util.hpp"

namespace critdim {
namespace {

namespace fs = std::filesystem;

std::string bytes_of(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// The writer's temporary files for output `out`.
std::vector<fs::path> temp_files(const std::string& out) {
    const fs::path p(out);
    const std::string prefix = "." + p.filename().string() + ".tmp.";
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(p.parent_path()))
        if (e.path().filename().string().rfind(prefix, 0) == 0) found.push_back(e.path());
    return found;
}

uintmax_t temp_bytes(const std::string& out) {
    uintmax_t n = 0;
    for (const auto& t : temp_files(out)) {
        std::error_code ec;  // the file may vanish (renamed) between listing and stat
        const uintmax_t size = fs::file_size(t, ec);
        if (!ec) n = std::max(n, size);
    }
    return n;
}

struct KillOutcome {
    int mid_write = 0;  // killed while its temporary file was partly written
    int finished = 0;   // the writer won the race and exited
};

// Runs `args` (writing `out`) `runs` times over an existing old file; the k-th run is killed once
// its temporary file holds k/(runs+1) of the new file's bytes. After each run the output must be
// the old bytes or the new bytes exactly.
KillOutcome kill_while_writing(const std::vector<std::string>& args, const std::string& out,
                               const std::string& old_bytes, const std::string& new_bytes, int runs) {
    KillOutcome outcome;
    for (int k = 1; k <= runs; ++k) {
        {
            std::ofstream f(out, std::ios::binary | std::ios::trunc);
            f << old_bytes;
        }
        const uintmax_t threshold = new_bytes.size() * k / (runs + 1);
        const int pid = test::spawn_critdim(args, "/dev/null", "/dev/null");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        int status = 0;
        bool exited = false;
        while (std::chrono::steady_clock::now() < deadline) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                exited = true;
                break;
            }
            if (temp_bytes(out) >= threshold) break;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        const bool left_temp = !temp_files(out).empty();
        if (killed && left_temp) ++outcome.mid_write;
        if (!killed) {
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "run " << k << " failed on its own";
            ++outcome.finished;
        }
        const std::string now = bytes_of(out);
        EXPECT_TRUE(now == old_bytes || now == new_bytes)
            << "run " << k << " (threshold " << threshold << " of " << new_bytes.size() << " bytes) left a torn " << out
            << " of " << now.size() << " bytes";
        if (killed && left_temp) {
            EXPECT_EQ(now, old_bytes) << "killed mid-write but the output changed";
        }
        for (const auto& t : temp_files(out)) fs::remove(t);
    }
    return outcome;
}

// Writes with `make(path)` once to learn the new bytes, then kills it repeatedly mid-write.
void check_writer(const std::string& dir, const std::string& name,
                  const std::function<std::vector<std::string>(const std::string&)>& make,
                  const std::string& old_bytes) {
    const std::string reference = dir + "/reference-" + name;
    const test::RunResult r = test::run_critdim(make(reference));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string new_bytes = bytes_of(reference);
    ASSERT_NE(new_bytes, old_bytes);
    const std::string out = dir + "/" + name;
    const KillOutcome o = kill_while_writing(make(out), out, old_bytes, new_bytes, 8);
    // Without kills that land mid-write the test would prove nothing.
    EXPECT_GE(o.mid_write, 4) << name << ": only " << o.mid_write << " of 8 kills landed while writing";
}

TEST(CrashSafe, KilledGgufWriterLeavesOldOrNewModel) {
    const std::string dir = test::temp_dir("crash-gguf");
    const auto synth = [](int seed, const std::string& out) {
        return std::vector<std::string>{"synth", "--config", "small", "--seed", std::to_string(seed),
                                        "-t",    "1",        "--out", out};
    };
    ASSERT_EQ(test::run_critdim(synth(1, dir + "/old.gguf")).exit_code, 0);
    check_writer(
        dir, "model.gguf", [&](const std::string& out) { return synth(2, out); }, bytes_of(dir + "/old.gguf"));
}

// The kill test above holds for every output only if every output goes through the same writer:
// no file in src/ other than base/files.cpp (AtomicFile) may open a file for writing or rename one.
TEST(CrashSafe, EveryOutputGoesThroughAtomicFile) {
    const std::vector<std::string> writes = {"ofstream", "fopen", "O_WRONLY", "O_CREAT", "rename(", "FILE*"};
    int files = 0;
    for (const auto& e : fs::recursive_directory_iterator(test::source_dir() + "/src")) {
        if (!e.is_regular_file()) continue;
        const std::string rel = fs::relative(e.path(), test::source_dir()).string();
        if (rel == "src/base/files.cpp") continue;
        ++files;
        const std::string text = bytes_of(e.path().string());
        for (const auto& w : writes) {
            EXPECT_EQ(text.find(w), std::string::npos) << rel << " uses " << w << " directly";
        }
    }
    EXPECT_GT(files, 50);
}

}  // namespace
}  // namespace critdim
