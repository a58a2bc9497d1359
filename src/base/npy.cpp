// NumPy .npy format 1.0: a magic string, a Python-dict header padded to 64 bytes, raw data.
#include <cstring>

#include "critdim/base.hpp"

namespace critdim {

int64_t NpyArray::size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

void write_npy(const std::string& path, const float* data, std::span<const int64_t> shape) {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    int64_t count = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        dict += std::to_string(shape[i]);
        if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";
        if (i + 1 < shape.size()) dict += " ";
        count *= shape[i];
    }
    dict += "), }";
    const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
    size_t total = preamble + dict.size() + 1;
    dict.append((64 - total % 64) % 64, ' ');
    dict += '\n';
    std::string head = "\x93NUMPY";
    head += '\x01';
    head += '\x00';
    const uint16_t len = static_cast<uint16_t>(dict.size());
    head += static_cast<char>(len & 0xff);
    head += static_cast<char>(len >> 8);
    head += dict;
    AtomicFile f(path);
    f.write(head);
    f.write(data, static_cast<size_t>(count) * sizeof(float));
    f.commit();
}

static std::string dict_value(const std::string& dict, const std::string& key, const std::string& path) {
    const size_t k = dict.find("'" + key + "'");
    if (k == std::string::npos) throw_input(path, "npy header has no '" + key + "'");
    size_t c = dict.find(':', k);
    if (c == std::string::npos) throw_input(path, "npy header is malformed at '" + key + "'");
    ++c;
    while (c < dict.size() && dict[c] == ' ') ++c;
    size_t e = c;
    if (e < dict.size() && dict[e] == '(') {
        e = dict.find(')', e);
        if (e == std::string::npos) throw_input(path, "npy header: unterminated shape");
        return dict.substr(c, e - c + 1);
    }
    while (e < dict.size() && dict[e] != ',' && dict[e] != '}') ++e;
    return dict.substr(c, e - c);
}

NpyArray read_npy(const std::string& path) {
    MappedFile f(path);
    const uint8_t* p = f.data();
    if (f.size() < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) throw_input(path, "not a .npy file (bad magic)");
    const int major = p[6];
    size_t header_len = 0, offset = 0;
    if (major == 1) {
        header_len = p[8] | (p[9] << 8);
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (f.size() < 12) throw_input(path, "truncated .npy header");
        header_len = p[8] | (p[9] << 8) | (p[10] << 16) | (static_cast<size_t>(p[11]) << 24);
        offset = 12;
    } else {
        throw_input(path, "unsupported .npy version " + std::to_string(major));
    }
    if (offset + header_len > f.size()) throw_input(path, "truncated .npy header");
    const std::string dict(reinterpret_cast<const char*>(p + offset), header_len);
    const std::string descr = dict_value(dict, "descr", path);
    if (descr != "'<f4'") throw_input(path, "dtype " + descr + " is not float32 ('<f4')");
    if (dict_value(dict, "fortran_order", path) != "False") throw_input(path, "Fortran order is not supported");
    const std::string shape_text = dict_value(dict, "shape", path);
    NpyArray a;
    std::string num;
    for (char ch : shape_text) {
        if (ch >= '0' && ch <= '9') {
            num += ch;
        } else if (!num.empty()) {
            a.shape.push_back(std::stoll(num));
            num.clear();
        }
    }
    const int64_t n = a.size();
    const size_t data_off = offset + header_len;
    if (data_off + static_cast<size_t>(n) * 4 > f.size()) throw_input(path, "data is shorter than the shape says");
    a.data.resize(static_cast<size_t>(n));
    std::memcpy(a.data.data(), p + data_off, static_cast<size_t>(n) * 4);
    return a;
}

}  // namespace critdim
