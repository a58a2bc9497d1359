// The GGUF reader and the model loader on arbitrary bytes: header, metadata, tensor table,
// architecture checks. Every typed getter is exercised on every key.
#include "critdim/gguf.hpp"
#include "critdim/model.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = critdim::fuzz::write_input(data, size, ".gguf");
    critdim::fuzz::expect_only_critdim_errors([&] {
        const auto f = critdim::gguf::File::open(path);
        for (const auto& entry : f->metadata()) {
            const std::string& key = entry.first;  // not a structured binding: lambdas capture it
            critdim::fuzz::expect_only_critdim_errors([&] { (void)f->get_string_array(key); });
            critdim::fuzz::expect_only_critdim_errors([&] { (void)f->get_int_array(key); });
            critdim::fuzz::expect_only_critdim_errors([&] { (void)f->get_float_array(key); });
            critdim::fuzz::expect_only_critdim_errors([&] { (void)f->get_uint(key); });
        }
        for (const auto& t : f->tensors()) (void)f->find_tensor(t.name);
        // Loading binds weights to an architecture (shapes, types) without running it.
        (void)critdim::model::Model::load(path);
    });
    return 0;
}
