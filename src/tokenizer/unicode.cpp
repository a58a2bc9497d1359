#include "tokenizer/unicode.hpp"

#include <utf8proc.h>

#include <array>

namespace critdim::tokenizer::unicode {

namespace {

bool white_space_property(uint32_t c) {
    switch (c) {
        case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
        case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
            return true;
        default:
            return c >= 0x2000 && c <= 0x200A;
    }
}

uint16_t category_flag(utf8proc_category_t cat) {
    switch (cat) {
        case UTF8PROC_CATEGORY_CN: return kUndefined;
        case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
            return kLetter;
        case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
            return kMark;
        case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
            return kNumber;
        case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO:
            return kPunctuation;
        case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK:
        case UTF8PROC_CATEGORY_SO:
            return kSymbol;
        case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
            return kSeparator;
        default:
            return kControl;  // Cc, Cf, Cs, Co
    }
}

// ASCII is by far the commonest input: its flags come from a table.
const std::array<uint16_t, 128>& ascii_flags() {
    static const std::array<uint16_t, 128> table = [] {
        std::array<uint16_t, 128> t{};
        for (uint32_t c = 0; c < 128; ++c) {
            t[c] = category_flag(utf8proc_category(static_cast<utf8proc_int32_t>(c)));
            if (white_space_property(c)) t[c] |= kWhitespace;
        }
        return t;
    }();
    return table;
}

}  // namespace

uint16_t flags(uint32_t cpt) {
    if (cpt < 128) return ascii_flags()[cpt];
    if (cpt > 0x10FFFF) return kUndefined;
    uint16_t f = category_flag(utf8proc_category(static_cast<utf8proc_int32_t>(cpt)));
    if (white_space_property(cpt)) f |= kWhitespace;
    return f;
}

uint32_t to_lower(uint32_t cpt) {
    if (cpt < 128) return (cpt >= 'A' && cpt <= 'Z') ? cpt + 32 : cpt;
    if (cpt > 0x10FFFF) return cpt;
    return static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cpt)));
}

uint32_t nfd_first(uint32_t cpt) {
    if (cpt < 0xC0 || cpt > 0x10FFFF) return cpt;
    utf8proc_int32_t buf[8];
    int last_boundclass = 0;
    const utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cpt), buf, 8,
                                                       UTF8PROC_DECOMPOSE, &last_boundclass);
    return n >= 1 ? static_cast<uint32_t>(buf[0]) : cpt;
}

std::vector<uint32_t> decode_utf8(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    auto cont = [&](size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
    size_t i = 0;
    while (i < n) {
        const uint8_t b = p[i];
        if (b < 0x80) {
            out.push_back(b);
            i += 1;
        } else if ((b & 0xE0) == 0xC0 && cont(i + 1)) {
            out.push_back((uint32_t(b & 0x1F) << 6) | (p[i + 1] & 0x3F));
            i += 2;
        } else if ((b & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
            out.push_back((uint32_t(b & 0x0F) << 12) | (uint32_t(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F));
            i += 3;
        } else if ((b & 0xF8) == 0xF0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
            out.push_back((uint32_t(b & 0x07) << 18) | (uint32_t(p[i + 1] & 0x3F) << 12) |
                          (uint32_t(p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F));
            i += 4;
        } else {
            out.push_back(0xFFFD);
            i += 1;
        }
    }
    return out;
}

void append_utf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

std::string to_utf8(uint32_t cpt) {
    std::string s;
    append_utf8(s, cpt);
    return s;
}

size_t complete_utf8_prefix(std::string_view s) {
    // Only the last three bytes can belong to an unfinished sequence.
    const size_t n = s.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const auto b = static_cast<uint8_t>(s[n - back]);
        if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
        if (b < 0x80) return n;
        const size_t need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
        return need > back ? n - back : n;
    }
    return n;
}

namespace {
struct ByteMap {
    std::array<std::string, 256> to_utf8;
    std::array<int, 324> from_cpt;  // code points of the mapping are all below 324
    ByteMap() {
        from_cpt.fill(-1);
        int extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const uint32_t cpt = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
            to_utf8[b] = unicode::to_utf8(cpt);
            from_cpt[cpt] = b;
        }
    }
};
const ByteMap& byte_map() {
    static const ByteMap map;
    return map;
}
}  // namespace

const std::string& byte_to_utf8(uint8_t byte) { return byte_map().to_utf8[byte]; }

int utf8_cpt_to_byte(uint32_t cpt) { return cpt < 324 ? byte_map().from_cpt[cpt] : -1; }

}  // namespace critdim::tokenizer::unicode
