#include "critdim/gguf.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace critdim::gguf {
namespace {

std::string write_sample(const std::string& path) {
    Writer w;
    w.set("general.architecture", Value::str("llama"));
    w.set("general.alignment", Value::u32(64));
    w.set("test.u8", Value{ValueType::UINT8, ValueType::UINT32, uint64_t{200}});
    w.set("test.i8", Value{ValueType::INT8, ValueType::UINT32, int64_t{-5}});
    w.set("test.u16", Value{ValueType::UINT16, ValueType::UINT32, uint64_t{60000}});
    w.set("test.i16", Value{ValueType::INT16, ValueType::UINT32, int64_t{-3000}});
    w.set("test.i32", Value::i32(-123456));
    w.set("test.u64", Value::u64(1ull << 40));
    w.set("test.i64", Value{ValueType::INT64, ValueType::UINT32, int64_t{-(1ll << 40)}});
    w.set("test.f32", Value::f32(0.25f));
    w.set("test.f64", Value{ValueType::FLOAT64, ValueType::UINT32, 1e-300});
    w.set("test.bool", Value::boolean(true));
    w.set("test.strings", Value::string_array({"a", "", "üñí"}));
    w.set("test.nested", Value::array(ValueType::ARRAY, {Value::i32_array({1, 2}), Value::i32_array({3})}));
    std::vector<float> a(6 * 4);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i);
    w.add_tensor("a", TensorType::F32, {6, 4}, a.data(), a.size() * 4);
    std::vector<uint8_t> q(34 * 2, 7);
    w.add_tensor("q", TensorType::Q8_0, {64}, q.data(), q.size());
    w.write(path);
    return path;
}

TEST(Gguf, RoundTripKeepsEveryValueAndTensor) {
    const std::string path = write_sample(test::temp_dir("gguf") + "/s.gguf");
    auto f = File::open(path);
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->alignment(), 64u);
    EXPECT_EQ(f->get_string("general.architecture"), "llama");
    EXPECT_EQ(f->get_uint("test.u8"), 200u);
    EXPECT_EQ(f->get_int("test.i8"), -5);
    EXPECT_EQ(f->get_uint("test.u16"), 60000u);
    EXPECT_EQ(f->get_int("test.i16"), -3000);
    EXPECT_EQ(f->get_int("test.i32"), -123456);
    EXPECT_EQ(f->get_uint("test.u64"), 1ull << 40);
    EXPECT_EQ(f->get_int("test.i64"), -(1ll << 40));
    EXPECT_EQ(f->get_float("test.f32"), 0.25);
    EXPECT_EQ(f->get_float("test.f64"), 1e-300);
    EXPECT_TRUE(f->get_bool("test.bool"));
    EXPECT_EQ(f->get_string_array("test.strings"), (std::vector<std::string>{"a", "", "üñí"}));
    const Value* nested = f->find("test.nested");
    ASSERT_NE(nested, nullptr);
    ASSERT_EQ(nested->items().size(), 2u);
    EXPECT_EQ(nested->items()[0].items().size(), 2u);
    const TensorInfo* a = f->find_tensor("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{6, 4}));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data) % 64, 0u) << "tensor data must honour general.alignment";
    float v;
    std::memcpy(&v, a->data + 4 * 23, 4);
    EXPECT_EQ(v, 23.0f);
    EXPECT_EQ(f->find_tensor("q")->n_bytes, 68u);

    // Writing what was read gives the same bytes.
    Writer w2;
    for (const auto& [k, val] : f->metadata()) w2.set(k, val);
    for (const auto& t : f->tensors()) w2.add_tensor(t.name, t.type(), t.shape, t.data, t.n_bytes);
    const std::string path2 = test::temp_dir("gguf") + "/s2.gguf";
    w2.write(path2);
    EXPECT_EQ(read_text_file(path), read_text_file(path2));
}

TEST(Gguf, ReadsVersion2) {
    // v2 and v3 share the little-endian layout (v3 added the big-endian variant).
    const std::string path = write_sample(test::temp_dir("gguf") + "/v3.gguf");
    std::string bytes = read_text_file(path);
    bytes[4] = 2;
    const std::string v2 = test::temp_dir("gguf") + "/v2.gguf";
    write_file_atomic(v2, bytes);
    auto f = File::open(v2);
    EXPECT_EQ(f->version(), 2u);
    EXPECT_EQ(f->get_string("general.architecture"), "llama");
    EXPECT_EQ(f->find_tensor("q")->n_bytes, 68u);
}

TEST(Gguf, TypedGettersNameTheKey) {
    const std::string path = write_sample(test::temp_dir("gguf") + "/s.gguf");
    auto f = File::open(path);
    try {
        f->get_uint("general.architecture");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), path + ": key 'general.architecture': expected an integer, found string");
    }
    try {
        f->get_string("no.such.key");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), path + ": key 'no.such.key': missing");
    }
    EXPECT_EQ(f->get_uint("no.such.key", 7), 7u);
}

TEST(Gguf, ReadsEveryGoldenModel) {
    const std::string dir = test::shared_dir() + "/golden";
    std::ifstream mf(dir + "/MANIFEST.json");
    const auto manifest = nlohmann::json::parse(mf);
    for (const auto& [rel, model] : manifest["models"].items()) {
        SCOPED_TRACE(rel);
        auto f = File::open(dir + "/" + rel);
        EXPECT_EQ(f->get_string("general.architecture"), model["arch"].get<std::string>());
        for (const auto& [name, type] : model["tensor_types"].items()) {
            const TensorInfo* t = f->find_tensor(name);
            ASSERT_NE(t, nullptr) << name;
            EXPECT_EQ(tensor_type_info(t->type_id)->name, type.get<std::string>()) << name;
        }
        EXPECT_EQ(f->tensors().size(), model["tensor_types"].size());
    }
}

// ---- malformed files, each built here from a valid one ----

class Malformed : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test::temp_dir("malformed");
        good_ = read_text_file(write_sample(dir_ + "/good.gguf"));
    }
    // Writes bytes and expects File::open to fail with an input error containing `expect`.
    void expect_error(const std::string& bytes, const std::string& expect) {
        const std::string path = dir_ + "/bad.gguf";
        write_file_atomic(path, bytes);
        try {
            File::open(path);
            ADD_FAILURE() << "no error, expected: " << expect;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::input);
            const std::string msg = e.what();
            EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
            EXPECT_NE(msg.find(expect), std::string::npos) << msg;
        }
    }
    // Offset of the first occurrence of a string in the good file.
    size_t find(const std::string& s) const {
        const size_t p = good_.find(s);
        EXPECT_NE(p, std::string::npos);
        return p;
    }
    template <class T>
    std::string patched(size_t at, T v) const {
        std::string b = good_;
        std::memcpy(b.data() + at, &v, sizeof(T));
        return b;
    }
    std::string dir_, good_;
};

TEST_F(Malformed, EmptyFile) { expect_error("", "not a GGUF file"); }
TEST_F(Malformed, WrongMagic) { expect_error("GGML" + good_.substr(4), "bad magic"); }
TEST_F(Malformed, UnknownVersion) { expect_error(patched<uint32_t>(4, 7), "GGUF version 7 is not supported"); }
TEST_F(Malformed, HugeTensorCount) { expect_error(patched<uint64_t>(8, 1ull << 60), "tensor count"); }
TEST_F(Malformed, HugeMetadataCount) { expect_error(patched<uint64_t>(16, 1ull << 60), "metadata count"); }

TEST_F(Malformed, TruncatedEverywhereNeverCrashes) {
    // Cut inside the header at every byte, and inside the data: always a clean error.
    const size_t data_start = File::open(dir_ + "/good.gguf")->data_offset();
    for (size_t n = 0; n < data_start; n += 1) {
        const std::string path = dir_ + "/cut.gguf";
        write_file_atomic(path, good_.substr(0, n));
        EXPECT_THROW(File::open(path), Error) << "cut at " << n;
    }
    const auto good = File::open(dir_ + "/good.gguf");
    const TensorInfo* q = good->find_tensor("q");
    expect_error(good_.substr(0, data_start + q->offset + q->n_bytes - 1), "tensor 'q': data ends at byte");
}

TEST_F(Malformed, StringLengthPastEnd) {
    const size_t at = find("general.architecture") - 8;
    expect_error(patched<uint64_t>(at, 1ull << 50), "string length");
}

TEST_F(Malformed, ArrayLengthPastEnd) {
    const size_t at = find("test.strings") + std::string("test.strings").size() + 4 + 4;
    expect_error(patched<uint64_t>(at, 1ull << 40), "key 'test.strings': array of");
}

TEST_F(Malformed, UnknownValueType) {
    const size_t at = find("test.bool") + std::string("test.bool").size();
    expect_error(patched<uint32_t>(at, 99), "key 'test.bool': unknown value type 99");
}

TEST_F(Malformed, UnknownTensorType) {
    // Tensor 'q': name, n_dims (4), ne[0] (8), then the type.
    const size_t at = good_.rfind(std::string("\x01\x00\x00\x00\x00\x00\x00\x00q", 9)) + 9 + 4 + 8;
    expect_error(patched<uint32_t>(at, 77), "tensor 'q': unknown tensor type id 77");
}

TEST_F(Malformed, TensorOffsetPastEnd) {
    const size_t at = good_.rfind(std::string("\x01\x00\x00\x00\x00\x00\x00\x00q", 9)) + 9 + 4 + 8 + 4;
    expect_error(patched<uint64_t>(at, 1ull << 20), "tensor 'q': data ends at byte");
    expect_error(patched<uint64_t>(at, 3), "not aligned");
}

TEST_F(Malformed, RowNotMultipleOfBlock) {
    const size_t at = good_.rfind(std::string("\x01\x00\x00\x00\x00\x00\x00\x00q", 9)) + 9 + 4;
    expect_error(patched<int64_t>(at, 48), "row length 48 is not a multiple of the Q8_0 block size 32");
    expect_error(patched<int64_t>(at, -1), "dimension 0 is -1");
}

TEST_F(Malformed, BadAlignment) {
    const size_t at = find("general.alignment") + std::string("general.alignment").size() + 4;
    expect_error(patched<uint32_t>(at, 48), "key 'general.alignment': 48 is not a power of two");
}

TEST_F(Malformed, RandomByteFlipsNeverCrash) {
    // Not a fuzzer (that is issue 9's job), but every single-byte corruption of the header must
    // either load or fail with an Error, under the sanitizers too.
    const size_t data_start = File::open(dir_ + "/good.gguf")->data_offset();
    uint32_t state = 12345;
    for (int i = 0; i < 400; ++i) {
        state = state * 1664525u + 1013904223u;
        std::string b = good_;
        b[(state >> 8) % data_start] = static_cast<char>(state >> 24);
        const std::string path = dir_ + "/flip.gguf";
        write_file_atomic(path, b);
        try {
            File::open(path);
        } catch (const Error&) {
        }
    }
}

}  // namespace
}  // namespace critdim::gguf
