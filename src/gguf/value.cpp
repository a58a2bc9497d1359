// Metadata values: construction helpers, typed access with errors that name the key, and a
// readable rendering.
#include <cmath>
#include <sstream>

#include "critdim/gguf.hpp"

namespace critdim::gguf {

const char* value_type_name(ValueType t) {
    switch (t) {
        case ValueType::UINT8:
            return "uint8";
        case ValueType::INT8:
            return "int8";
        case ValueType::UINT16:
            return "uint16";
        case ValueType::INT16:
            return "int16";
        case ValueType::UINT32:
            return "uint32";
        case ValueType::INT32:
            return "int32";
        case ValueType::FLOAT32:
            return "float32";
        case ValueType::BOOL:
            return "bool";
        case ValueType::STRING:
            return "string";
        case ValueType::ARRAY:
            return "array";
        case ValueType::UINT64:
            return "uint64";
        case ValueType::INT64:
            return "int64";
        case ValueType::FLOAT64:
            return "float64";
    }
    return "unknown";
}

bool is_integer_type(ValueType type) {
    switch (type) {
        case ValueType::UINT8:
        case ValueType::INT8:
        case ValueType::UINT16:
        case ValueType::INT16:
        case ValueType::UINT32:
        case ValueType::INT32:
        case ValueType::UINT64:
        case ValueType::INT64:
            return true;
        default:
            return false;
    }
}

bool Value::is_integer() const { return is_integer_type(type); }

Value Value::string_array(const std::vector<std::string>& items) {
    std::vector<Value> v;
    v.reserve(items.size());
    for (const auto& s : items) v.push_back(str(s));
    return array(ValueType::STRING, std::move(v));
}

Value Value::f32_array(const std::vector<float>& items) {
    std::vector<Value> v;
    v.reserve(items.size());
    for (float x : items) v.push_back(f32(x));
    return array(ValueType::FLOAT32, std::move(v));
}

Value Value::i32_array(const std::vector<int32_t>& items) {
    std::vector<Value> v;
    v.reserve(items.size());
    for (int32_t x : items) v.push_back(i32(x));
    return array(ValueType::INT32, std::move(v));
}

std::string Value::to_string(size_t max_items) const {
    std::ostringstream os;
    switch (type) {
        case ValueType::STRING: {
            const auto& s = std::get<std::string>(data);
            if (s.size() > 200)
                os << '"' << s.substr(0, 200) << "\"... (" << s.size() << " bytes)";
            else
                os << '"' << s << '"';
            break;
        }
        case ValueType::BOOL:
            os << (std::get<bool>(data) ? "true" : "false");
            break;
        case ValueType::FLOAT32:
        case ValueType::FLOAT64:
            os << std::get<double>(data);
            break;
        case ValueType::ARRAY: {
            const auto& it = items();
            os << value_type_name(elem_type) << "[" << it.size() << "] [";
            for (size_t i = 0; i < it.size() && i < max_items; ++i) os << (i ? ", " : "") << it[i].to_string(max_items);
            if (it.size() > max_items) os << ", ...";
            os << "]";
            break;
        }
        default:
            if (std::holds_alternative<uint64_t>(data))
                os << std::get<uint64_t>(data);
            else
                os << std::get<int64_t>(data);
    }
    return os.str();
}

namespace {
int64_t as_int(const Value& v) {
    return std::holds_alternative<uint64_t>(v.data) ? static_cast<int64_t>(std::get<uint64_t>(v.data))
                                                    : std::get<int64_t>(v.data);
}
}  // namespace

uint64_t File::get_uint(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_key(key, "missing");
    if (!v->is_integer()) fail_key(key, std::string("expected an integer, found ") + value_type_name(v->type));
    if (std::holds_alternative<int64_t>(v->data) && std::get<int64_t>(v->data) < 0)
        fail_key(key, "expected a non-negative integer, found " + v->to_string());
    return static_cast<uint64_t>(as_int(*v));
}

int64_t File::get_int(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_key(key, "missing");
    if (!v->is_integer()) fail_key(key, std::string("expected an integer, found ") + value_type_name(v->type));
    return as_int(*v);
}

double File::get_float(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_key(key, "missing");
    if (v->is_float()) return std::get<double>(v->data);
    if (v->is_integer()) return static_cast<double>(as_int(*v));
    fail_key(key, std::string("expected a number, found ") + value_type_name(v->type));
}

bool File::get_bool(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_key(key, "missing");
    if (v->type != ValueType::BOOL) fail_key(key, std::string("expected a bool, found ") + value_type_name(v->type));
    return std::get<bool>(v->data);
}

const std::string& File::get_string(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_key(key, "missing");
    if (v->type != ValueType::STRING)
        fail_key(key, std::string("expected a string, found ") + value_type_name(v->type));
    return std::get<std::string>(v->data);
}

std::vector<std::string> File::get_string_array(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_key(key, "missing");
    if (v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING) fail_key(key, "expected an array of strings");
    std::vector<std::string> out;
    out.reserve(v->items().size());
    for (const Value& x : v->items()) out.push_back(std::get<std::string>(x.data));
    return out;
}

std::vector<float> File::get_float_array(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_key(key, "missing");
    if (v->type != ValueType::ARRAY || !(is_float_type(v->elem_type) || is_integer_type(v->elem_type)))
        fail_key(key, "expected an array of numbers");
    std::vector<float> out;
    out.reserve(v->items().size());
    for (const Value& x : v->items())
        out.push_back(x.is_float() ? static_cast<float>(std::get<double>(x.data)) : static_cast<float>(as_int(x)));
    return out;
}

std::vector<int64_t> File::get_int_array(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_key(key, "missing");
    if (v->type != ValueType::ARRAY || !is_integer_type(v->elem_type)) fail_key(key, "expected an array of integers");
    std::vector<int64_t> out;
    out.reserve(v->items().size());
    for (const Value& x : v->items()) out.push_back(as_int(x));
    return out;
}

uint64_t File::get_uint(std::string_view key, uint64_t fallback) const { return has(key) ? get_uint(key) : fallback; }
double File::get_float(std::string_view key, double fallback) const { return has(key) ? get_float(key) : fallback; }
bool File::get_bool(std::string_view key, bool fallback) const { return has(key) ? get_bool(key) : fallback; }
std::string File::get_string(std::string_view key, const std::string& fallback) const {
    return has(key) ? get_string(key) : fallback;
}

int64_t TensorInfo::n_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string TensorInfo::shape_string() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace critdim::gguf
