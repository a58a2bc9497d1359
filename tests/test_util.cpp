#include "test_util.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace critdim::test {

std::string source_dir() { return CRITDIM_SOURCE_DIR; }
std::string critdim_binary() { return CRITDIM_BINARY; }

const std::string& shared_dir() {
    static const std::string dir = [] {
        const char* env = std::getenv("CRITDIM_SHARED");
        std::string d = env && *env ? env : source_dir() + "/../shared";
        if (!fs::exists(d + "/golden/MANIFEST.json"))
            throw std::runtime_error("the shared test data is missing: expected '" + d +
                                     "/golden/MANIFEST.json' (set CRITDIM_SHARED to its folder)");
        return fs::canonical(d).string();
    }();
    return dir;
}

namespace {
struct TempRoot {
    std::string path;
    TempRoot() {
        std::random_device rd;
        path = (fs::temp_directory_path() / ("critdim-test-" + std::to_string(getpid()) + "-" + std::to_string(rd())))
                   .string();
        fs::create_directories(path);
    }
    ~TempRoot() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};
}  // namespace

std::string temp_dir(const std::string& tag) {
    static TempRoot root;
    static int counter = 0;
    std::string d = root.path + "/" + tag + "-" + std::to_string(counter++);
    fs::create_directories(d);
    return d;
}

static std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

int spawn_critdim(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path) {
    const pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out_path.c_str(), "w", stdout) || !freopen(err_path.c_str(), "w", stderr)) _exit(127);
        std::vector<char*> argv;
        std::string bin = CRITDIM_BINARY;
        argv.push_back(bin.data());
        std::vector<std::string> copy = args;
        for (auto& a : copy) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    return pid;
}

RunResult run_critdim(const std::vector<std::string>& args) {
    const std::string dir = temp_dir("run");
    const std::string out = dir + "/stdout", err = dir + "/stderr";
    const pid_t pid = spawn_critdim(args, out, err);
    int status = 0;
    waitpid(pid, &status, 0);
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

}  // namespace critdim::test
