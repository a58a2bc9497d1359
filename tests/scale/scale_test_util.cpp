#include "scale/scale_test_util.hpp"

#include <fstream>
#include <map>

#include "critdim/model.hpp"
#include "test_util.hpp"

namespace critdim::test {

std::string scale_model() {
    static const std::string path = [] {
        const std::string p = temp_dir("scale-model") + "/tiny.gguf";
        model::SynthOptions o;
        o.config = model::synth_config("tiny");
        o.seed = 11;
        model::synthesize(o, p);
        return p;
    }();
    return path;
}

std::string scale_corpus(int n_lines) {
    static std::map<int, std::string> made;
    auto& path = made[n_lines];
    if (path.empty()) {
        path = temp_dir("scale-corpus") + "/docs.txt";
        std::ofstream f(path);
        const char* words[] = {"the river",  "12 + 30 = 42",      "a quiet forest",   "seven times eight",
                               "birds sing", "the cell membrane", "once upon a time", "x"};
        for (int i = 0; i < n_lines; ++i)
            f << "Line " << i << ": " << words[i % 8] << " and " << words[(i * 5 + 3) % 8] << ".\n";
    }
    return path;
}

std::vector<std::string> scale_scan_args(int n_lines) {
    return {scale_model(), "--corpus", scale_corpus(n_lines), "--policy", "all", "--batch", "64", "-t", "1"};
}

}  // namespace critdim::test
