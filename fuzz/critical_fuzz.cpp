// critical.json as `critdim vector --dims` reads it, on arbitrary bytes (the two stats files
// are fixed and valid, so the parser of the critical file is what varies).
#include <filesystem>

#include "critdim/analysis.hpp"
#include "critdim/steer.hpp"
#include "fuzz_util.hpp"

namespace {

std::string make_stats(const char* name) {
    const std::string path = critdim::fuzz::input_path(name);
    critdim::analysis::Stats st;
    st.init({"resid_post.0"}, 8);
    st.header.name = name;
    st.header.model_hash = "xxh3_64:0";
    st.header.n_layer = 1;
    st.count[0] = 1;
    for (int d = 0; d < 8; ++d) st.s.sum[st.at(0, d)] = d;
    st.write(path);
    return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string pos = make_stats(".pos.stats"), neg = make_stats(".neg.stats");
    critdim::steer::VectorOptions o;
    o.pos = pos;
    o.neg = neg;
    o.dims_path = critdim::fuzz::write_input(data, size, ".critical.json");
    critdim::fuzz::expect_only_critdim_errors([&] { (void)critdim::steer::build_vector_plan(o); });
    return 0;
}
