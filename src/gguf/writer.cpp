// GGUF v3 writer: metadata in insertion order, tensors aligned to general.alignment.
#include <cstring>

#include "critdim/gguf.hpp"

namespace critdim::gguf {

namespace {

class Bytes {
public:
    template <class T>
    void put(T v) {
        const size_t n = buf_.size();
        buf_.resize(n + sizeof(T));
        std::memcpy(buf_.data() + n, &v, sizeof(T));
    }
    void put_string(const std::string& s) {
        put<uint64_t>(s.size());
        buf_.insert(buf_.end(), s.begin(), s.end());
    }
    void pad_to(uint64_t alignment) {
        while (buf_.size() % alignment) buf_.push_back('\0');
    }
    const std::string& str() const { return buf_; }

private:
    std::string buf_;
};

void put_value(Bytes& b, const Value& v, const std::string& key) {
    switch (v.type) {
        case ValueType::UINT8:
            b.put<uint8_t>(static_cast<uint8_t>(std::get<uint64_t>(v.data)));
            break;
        case ValueType::INT8:
            b.put<int8_t>(static_cast<int8_t>(std::get<int64_t>(v.data)));
            break;
        case ValueType::UINT16:
            b.put<uint16_t>(static_cast<uint16_t>(std::get<uint64_t>(v.data)));
            break;
        case ValueType::INT16:
            b.put<int16_t>(static_cast<int16_t>(std::get<int64_t>(v.data)));
            break;
        case ValueType::UINT32:
            b.put<uint32_t>(static_cast<uint32_t>(std::get<uint64_t>(v.data)));
            break;
        case ValueType::INT32:
            b.put<int32_t>(static_cast<int32_t>(std::get<int64_t>(v.data)));
            break;
        case ValueType::FLOAT32:
            b.put<float>(static_cast<float>(std::get<double>(v.data)));
            break;
        case ValueType::UINT64:
            b.put<uint64_t>(std::get<uint64_t>(v.data));
            break;
        case ValueType::INT64:
            b.put<int64_t>(std::get<int64_t>(v.data));
            break;
        case ValueType::FLOAT64:
            b.put<double>(std::get<double>(v.data));
            break;
        case ValueType::BOOL:
            b.put<uint8_t>(std::get<bool>(v.data) ? 1 : 0);
            break;
        case ValueType::STRING:
            b.put_string(std::get<std::string>(v.data));
            break;
        case ValueType::ARRAY: {
            b.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
            b.put<uint64_t>(v.items().size());
            for (const Value& x : v.items()) {
                if (x.type != v.elem_type)
                    throw Error(ErrorKind::internal, key, "array element type differs from the array's");
                put_value(b, x, key);
            }
            break;
        }
    }
}

}  // namespace

void Writer::set(const std::string& key, Value value) {
    for (auto& [k, v] : metadata_) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    metadata_.emplace_back(key, std::move(value));
}

void Writer::add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape, const void* data,
                        size_t n_bytes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const TensorTypeInfo& info = tensor_type_info(type);
    if (shape.empty() || shape[0] % info.block_size != 0 ||
        static_cast<size_t>(n / info.block_size * info.block_bytes) != n_bytes)
        throw Error(ErrorKind::internal, name, "tensor bytes do not match its type and shape");
    const auto* p = static_cast<const uint8_t*>(data);
    tensors_.push_back({name, type, std::move(shape), n_bytes, std::vector<uint8_t>(p, p + n_bytes), nullptr});
}

void Writer::add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape, Fill fill) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const TensorTypeInfo& info = tensor_type_info(type);
    if (shape.empty() || shape[0] % info.block_size != 0)
        throw Error(ErrorKind::internal, name, "row length is not a multiple of the block size");
    const auto n_bytes = static_cast<size_t>(n / info.block_size * info.block_bytes);
    tensors_.push_back({name, type, std::move(shape), n_bytes, {}, std::move(fill)});
}

void Writer::write(const std::string& path) const {
    uint64_t alignment = 32;
    for (const auto& [k, v] : metadata_)
        if (k == "general.alignment") alignment = std::get<uint64_t>(v.data);

    Bytes h;
    h.put<uint32_t>(0x46554747);
    h.put<uint32_t>(3);
    h.put<uint64_t>(tensors_.size());
    h.put<uint64_t>(metadata_.size());
    for (const auto& [k, v] : metadata_) {
        h.put_string(k);
        h.put<uint32_t>(static_cast<uint32_t>(v.type));
        put_value(h, v, k);
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
        h.put_string(t.name);
        h.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
        for (int64_t d : t.shape) h.put<int64_t>(d);
        h.put<uint32_t>(static_cast<uint32_t>(t.type));
        h.put<uint64_t>(offset);
        offset += (t.n_bytes + alignment - 1) / alignment * alignment;
    }
    h.pad_to(alignment);

    AtomicFile f(path);
    f.write(h.str());
    static const std::vector<char> zeros(4096, 0);
    std::vector<uint8_t> scratch;
    for (const auto& t : tensors_) {
        if (t.fill) {
            scratch.assign(t.n_bytes, 0);
            t.fill(scratch.data(), t.n_bytes);
            f.write(scratch.data(), t.n_bytes);
        } else {
            f.write(t.bytes.data(), t.n_bytes);
        }
        size_t pad = (alignment - t.n_bytes % alignment) % alignment;
        while (pad > 0) {
            const size_t n = std::min(pad, zeros.size());
            f.write(zeros.data(), n);
            pad -= n;
        }
    }
    f.commit();
}

}  // namespace critdim::gguf
