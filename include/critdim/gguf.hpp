// critdim gguf: reads GGUF v2/v3 files by mmap (tensor data is never copied) and writes them.
// Every malformed input is an Error naming the file and the key or tensor at fault.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "critdim/base.hpp"

namespace critdim::gguf {

enum class ValueType : uint32_t {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12,
};

const char* value_type_name(ValueType t);
bool is_integer_type(ValueType t);
inline bool is_float_type(ValueType t) { return t == ValueType::FLOAT32 || t == ValueType::FLOAT64; }

// One metadata value. Arrays hold their element type and elements (arrays may nest).
struct Value {
    ValueType type = ValueType::UINT32;
    ValueType elem_type = ValueType::UINT32;  // for arrays
    std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<Value>> data;

    static Value u32(uint32_t v) { return {ValueType::UINT32, ValueType::UINT32, uint64_t{v}}; }
    static Value u64(uint64_t v) { return {ValueType::UINT64, ValueType::UINT32, v}; }
    static Value i32(int32_t v) { return {ValueType::INT32, ValueType::UINT32, int64_t{v}}; }
    static Value f32(float v) { return {ValueType::FLOAT32, ValueType::UINT32, double{v}}; }
    static Value boolean(bool v) { return {ValueType::BOOL, ValueType::UINT32, v}; }
    static Value str(std::string v) { return {ValueType::STRING, ValueType::UINT32, std::move(v)}; }
    static Value array(ValueType elem, std::vector<Value> items) { return {ValueType::ARRAY, elem, std::move(items)}; }
    static Value string_array(const std::vector<std::string>& items);
    static Value f32_array(const std::vector<float>& items);
    static Value i32_array(const std::vector<int32_t>& items);

    bool is_integer() const;
    bool is_float() const { return is_float_type(type); }
    const std::vector<Value>& items() const { return std::get<std::vector<Value>>(data); }
    // A readable rendering for `critdim info` (long arrays abbreviated).
    std::string to_string(size_t max_items = 8) const;
};

struct TensorInfo {
    std::string name;
    std::vector<int64_t> shape;  // ggml order: shape[0] is the row length (contiguous)
    uint32_t type_id = 0;        // ggml type id
    uint64_t offset = 0;         // from the start of the data section
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr;  // into the mapping

    int64_t n_elements() const;
    int64_t n_rows() const { return shape.empty() ? 1 : n_elements() / shape[0]; }
    TensorType type() const { return static_cast<TensorType>(type_id); }
    std::string shape_string() const;  // "[576, 49152]"
};

class File {
public:
    // Opens and validates the whole header; throws Error(input) naming the file and the field.
    static std::unique_ptr<File> open(const std::string& path);

    const std::string& path() const { return map_.path(); }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t file_size() const { return map_.size(); }
    uint64_t data_offset() const { return data_offset_; }

    // Metadata in file order.
    const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
    const Value* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Typed getters: throw naming the file and key when the key is missing or of another type.
    uint64_t get_uint(std::string_view key) const;
    int64_t get_int(std::string_view key) const;
    double get_float(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    const std::string& get_string(std::string_view key) const;
    std::vector<std::string> get_string_array(std::string_view key) const;
    std::vector<float> get_float_array(std::string_view key) const;
    std::vector<int64_t> get_int_array(std::string_view key) const;
    // The same, returning the fallback when the key is absent (a wrong type still throws).
    uint64_t get_uint(std::string_view key, uint64_t fallback) const;
    double get_float(std::string_view key, double fallback) const;
    bool get_bool(std::string_view key, bool fallback) const;
    std::string get_string(std::string_view key, const std::string& fallback) const;

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;

private:
    explicit File(const std::string& path) : map_(path) {}
    void parse();
    [[noreturn]] void fail_key(std::string_view key, std::string_view what) const;

    MappedFile map_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, Value>> metadata_;
    std::unordered_map<std::string, size_t> metadata_index_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
};

// Writes GGUF v3. Tensors are laid out in the order added, each aligned to `general.alignment`
// (32 unless set). The file is written atomically.
class Writer {
public:
    void set(const std::string& key, Value value);  // replaces an existing key in place
    // data must hold exactly the bytes the type and shape imply; it is copied.
    void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape, const void* data,
                    size_t n_bytes);
    // A tensor whose bytes `fill` writes when the file is written (one tensor in memory at a
    // time, so multi-gigabyte models can be made).
    using Fill = std::function<void(uint8_t* dst, size_t n_bytes)>;
    void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape, Fill fill);
    void write(const std::string& path) const;

private:
    struct PendingTensor {
        std::string name;
        TensorType type;
        std::vector<int64_t> shape;
        size_t n_bytes;
        std::vector<uint8_t> bytes;  // empty when `fill` makes them
        Fill fill;
    };
    std::vector<std::pair<std::string, Value>> metadata_;
    std::vector<PendingTensor> tensors_;
};

}  // namespace critdim::gguf
