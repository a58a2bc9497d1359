#include "steer/values.hpp"

#include <cstring>
#include <filesystem>

#include "critdim/gguf.hpp"

namespace critdim::steer {

std::string resolve_relative(const std::string& file, const std::string& base_dir) {
    const std::filesystem::path p(file);
    if (p.is_absolute() || base_dir.empty()) return file;
    return (std::filesystem::path(base_dir) / p).string();
}

Values values_from_npy(const std::string& file, const std::string& base_dir, const std::string& where) {
    NpyArray a;
    try {
        a = read_npy(resolve_relative(file, base_dir));
    } catch (const Error& e) {
        throw Error(e.kind(), where, e.what());
    }
    Values v;
    if (a.shape.size() == 1) {
        v.n_rows = 1;
        v.n_cols = a.shape[0];
    } else if (a.shape.size() == 2) {
        v.n_rows = a.shape[0];
        v.n_cols = a.shape[1];
    } else {
        throw Error(ErrorKind::input, where,
                    "'" + file + "' has " + std::to_string(a.shape.size()) + " dimensions (expected [n] or [layers, n])");
    }
    if (v.n_rows == 0 || v.n_cols == 0) throw Error(ErrorKind::input, where, "'" + file + "' is empty");
    v.data = std::move(a.data);
    return v;
}

Values values_from_gguf(const std::string& file, const std::string& tensor, const std::vector<int>& layers,
                        const std::string& base_dir, const std::string& where) {
    std::unique_ptr<gguf::File> g;
    try {
        g = gguf::File::open(resolve_relative(file, base_dir));
    } catch (const Error& e) {
        throw Error(e.kind(), where, e.what());
    }
    const size_t pat = tensor.find("{layer}");
    std::vector<std::string> names;
    if (pat == std::string::npos) {
        names.push_back(tensor);
    } else {
        for (int l : layers) names.push_back(tensor.substr(0, pat) + std::to_string(l) + tensor.substr(pat + 7));
    }
    Values v;
    v.n_rows = static_cast<int64_t>(names.size());
    for (const std::string& name : names) {
        const gguf::TensorInfo* t = g->find_tensor(name);
        if (!t) throw Error(ErrorKind::input, where, "'" + file + "' has no tensor '" + name + "'");
        if (t->type() != TensorType::F32 || t->shape.size() != 1)
            throw Error(ErrorKind::input, where,
                        "'" + file + "': tensor '" + name + "' is " + tensor_type_name(t->type()) + " " +
                            t->shape_string() + " (expected a 1-D F32 tensor)");
        if (v.n_cols != 0 && t->shape[0] != v.n_cols)
            throw Error(ErrorKind::input, where, "'" + file + "': tensor '" + name + "' has " +
                                                     std::to_string(t->shape[0]) + " values, the first has " +
                                                     std::to_string(v.n_cols));
        v.n_cols = t->shape[0];
        const size_t at = v.data.size();
        v.data.resize(at + static_cast<size_t>(v.n_cols));
        std::memcpy(v.data.data() + at, t->data, static_cast<size_t>(v.n_cols) * sizeof(float));
    }
    return v;
}

}  // namespace critdim::steer
