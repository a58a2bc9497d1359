#include "cli/common.hpp"

#include <charconv>
#include <cstdio>


namespace critdim::cli {

std::vector<int32_t> parse_token_list(const std::string& text) {
    std::vector<int32_t> ids;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string item = text.substr(start, end - start);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        int32_t v = 0;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || v < 0)
            throw_usage("--tokens: '" + item + "' is not a token id (expected comma-separated non-negative integers)");
        ids.push_back(v);
        start = end + 1;
    }
    if (ids.empty()) throw_usage("--tokens: no token ids given");
    return ids;
}

void add_threads_option(CLI::App* cmd, int& threads) {
    threads = ThreadPool::default_threads();
    cmd->add_option("-t,--threads", threads, "worker threads (default: all cores)")->check(CLI::Range(1, 1024));
}

void log(const std::string& message) { std::fprintf(stderr, "%s\n", message.c_str()); }

}  // namespace critdim::cli
