// GGUF reader: parses the header of a mapped file with a bounds-checked cursor and checks
// every claim the file makes (counts, lengths, shapes, offsets) before trusting it.
#include <cstring>
#include <limits>

#include "critdim/gguf.hpp"

namespace critdim::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxDims = 4;
constexpr int kMaxNesting = 8;

// A cursor over the header bytes; every read checks the bounds.
class Cursor {
public:
    Cursor(const std::string& path, const uint8_t* data, size_t size) : path_(path), data_(data), size_(size) {}

    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }

    template <class T>
    T read(std::string_view what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string read_string(std::string_view what) {
        const uint64_t len = read<uint64_t>(what);
        if (len > remaining())
            throw_input(path_, std::string(what) + ": string length " + std::to_string(len) +
                                   " extends past the end of the file");
        std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
        pos_ += len;
        return s;
    }

    void need(size_t n, std::string_view what) const {
        if (n > remaining())
            throw_input(path_, std::string(what) + ": file is truncated (needs " + std::to_string(n) +
                                   " bytes at offset " + std::to_string(pos_) + ", file has " + std::to_string(size_) +
                                   ")");
    }

    const std::string& path() const { return path_; }

private:
    const std::string& path_;
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

// The smallest number of bytes one element of this type occupies in the file.
size_t min_value_bytes(ValueType t) {
    switch (t) {
        case ValueType::UINT8:
        case ValueType::INT8:
        case ValueType::BOOL:
            return 1;
        case ValueType::UINT16:
        case ValueType::INT16:
            return 2;
        case ValueType::UINT32:
        case ValueType::INT32:
        case ValueType::FLOAT32:
            return 4;
        case ValueType::UINT64:
        case ValueType::INT64:
        case ValueType::FLOAT64:
        case ValueType::STRING:
            return 8;
        case ValueType::ARRAY:
            return 12;
    }
    return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

Value read_value(Cursor& c, ValueType type, const std::string& key, int depth) {
    const std::string what = "key '" + key + "'";
    Value v;
    v.type = type;
    switch (type) {
        case ValueType::UINT8:
            v.data = uint64_t{c.read<uint8_t>(what)};
            break;
        case ValueType::INT8:
            v.data = int64_t{c.read<int8_t>(what)};
            break;
        case ValueType::UINT16:
            v.data = uint64_t{c.read<uint16_t>(what)};
            break;
        case ValueType::INT16:
            v.data = int64_t{c.read<int16_t>(what)};
            break;
        case ValueType::UINT32:
            v.data = uint64_t{c.read<uint32_t>(what)};
            break;
        case ValueType::INT32:
            v.data = int64_t{c.read<int32_t>(what)};
            break;
        case ValueType::FLOAT32:
            v.data = double{c.read<float>(what)};
            break;
        case ValueType::UINT64:
            v.data = c.read<uint64_t>(what);
            break;
        case ValueType::INT64:
            v.data = c.read<int64_t>(what);
            break;
        case ValueType::FLOAT64:
            v.data = c.read<double>(what);
            break;
        case ValueType::BOOL: {
            const uint8_t b = c.read<uint8_t>(what);
            if (b > 1) throw_input(c.path(), what + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
            v.data = b != 0;
            break;
        }
        case ValueType::STRING:
            v.data = c.read_string(what);
            break;
        case ValueType::ARRAY: {
            if (depth >= kMaxNesting)
                throw_input(c.path(), what + ": arrays nested deeper than " + std::to_string(kMaxNesting));
            const uint32_t et = c.read<uint32_t>(what);
            if (!valid_value_type(et))
                throw_input(c.path(), what + ": unknown array element type " + std::to_string(et));
            const uint64_t n = c.read<uint64_t>(what);
            v.elem_type = static_cast<ValueType>(et);
            if (n > c.remaining() / min_value_bytes(v.elem_type))
                throw_input(c.path(),
                            what + ": array of " + std::to_string(n) + " elements extends past the end of the file");
            std::vector<Value> items;
            items.reserve(n);
            for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(c, v.elem_type, key, depth + 1));
            v.data = std::move(items);
            break;
        }
    }
    return v;
}

}  // namespace

std::unique_ptr<File> File::open(const std::string& path) {
    std::unique_ptr<File> f(new File(path));
    f->parse();
    return f;
}

void File::parse() {
    const std::string& p = path();
    Cursor c(p, map_.data(), map_.size());
    if (map_.size() < 4) throw_input(p, "not a GGUF file: only " + std::to_string(map_.size()) + " bytes");
    const uint32_t magic = c.read<uint32_t>("magic");
    if (magic != kMagic) throw_input(p, "not a GGUF file (bad magic)");
    version_ = c.read<uint32_t>("version");
    if (version_ != 2 && version_ != 3)
        throw_input(p, "GGUF version " + std::to_string(version_) + " is not supported (only 2 and 3)");
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // A tensor entry takes at least 8 (name) + 4 (dims) + 8 + 4 + 8 bytes, a key-value 8 + 4 + 1.
    if (n_kv > c.remaining() / 13)
        throw_input(p, "metadata count " + std::to_string(n_kv) + " is larger than the file can hold");
    if (n_tensors > c.remaining() / 32)
        throw_input(p, "tensor count " + std::to_string(n_tensors) + " is larger than the file can hold");

    metadata_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
        std::string key = c.read_string("metadata key #" + std::to_string(i));
        const uint32_t t = c.read<uint32_t>("key '" + key + "'");
        if (!valid_value_type(t)) throw_input(p, "key '" + key + "': unknown value type " + std::to_string(t));
        Value v = read_value(c, static_cast<ValueType>(t), key, 0);
        if (metadata_index_.count(key)) throw_input(p, "key '" + key + "' appears twice");
        metadata_index_.emplace(key, metadata_.size());
        metadata_.emplace_back(std::move(key), std::move(v));
    }

    if (const Value* a = find("general.alignment")) {
        if (a->type != ValueType::UINT32) fail_key("general.alignment", "must be uint32");
        alignment_ = std::get<uint64_t>(a->data);
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
            fail_key("general.alignment", std::to_string(alignment_) + " is not a power of two");
    }

    tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        TensorInfo t;
        t.name = c.read_string("tensor #" + std::to_string(i) + " name");
        const std::string what = "tensor '" + t.name + "'";
        const uint32_t n_dims = c.read<uint32_t>(what);
        if (n_dims > kMaxDims)
            throw_input(
                p, what + ": " + std::to_string(n_dims) + " dimensions (at most " + std::to_string(kMaxDims) + ")");
        int64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const int64_t ne = c.read<int64_t>(what);
            if (ne <= 0) throw_input(p, what + ": dimension " + std::to_string(d) + " is " + std::to_string(ne));
            if (n_elements > std::numeric_limits<int64_t>::max() / ne)
                throw_input(p, what + ": element count overflows");
            n_elements *= ne;
            t.shape.push_back(ne);
        }
        t.type_id = c.read<uint32_t>(what);
        t.offset = c.read<uint64_t>(what);
        const TensorTypeInfo* info = tensor_type_info(t.type_id);
        if (!info) throw_input(p, what + ": unknown tensor type id " + std::to_string(t.type_id));
        const int64_t row = t.shape.empty() ? 1 : t.shape[0];
        if (row % info->block_size != 0)
            throw_input(p, what + ": row length " + std::to_string(row) + " is not a multiple of the " + info->name +
                               " block size " + std::to_string(info->block_size));
        const int64_t n_blocks = n_elements / info->block_size;
        if (n_blocks > std::numeric_limits<int64_t>::max() / info->block_bytes)
            throw_input(p, what + ": byte size overflows");
        t.n_bytes = static_cast<uint64_t>(n_blocks * info->block_bytes);
        if (tensor_index_.count(t.name)) throw_input(p, what + " appears twice");
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    const uint64_t header_end = c.pos();
    data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
    for (TensorInfo& t : tensors_) {
        const std::string what = "tensor '" + t.name + "'";
        if (t.offset % alignment_ != 0)
            throw_input(p, what + ": data offset " + std::to_string(t.offset) + " is not aligned to " +
                               std::to_string(alignment_));
        const uint64_t begin = data_offset_ + t.offset;
        if (t.offset > map_.size() || begin > map_.size() || t.n_bytes > map_.size() - begin)
            throw_input(p, what + ": data ends at byte " + std::to_string(begin + t.n_bytes) + ", file has " +
                               std::to_string(map_.size()));
        t.data = map_.data() + begin;
    }
}

void File::fail_key(std::string_view key, std::string_view what) const {
    throw_input(path(), "key '" + std::string(key) + "': " + std::string(what));
}

const Value* File::find(std::string_view key) const {
    auto it = metadata_index_.find(std::string(key));
    return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(std::string(name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace critdim::gguf
