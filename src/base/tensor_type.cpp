// The catalogue of ggml tensor types (ids, block sizes and bytes as ggml defines them), so
// that a GGUF file holding any of them can be size-checked and an unsupported one named.
#include <algorithm>
#include <array>
#include <cctype>

#include "critdim/base.hpp"

namespace critdim {

namespace {
constexpr std::array<TensorTypeInfo, 33> kTypes = {{
    {0, "F32", 1, 4, true},          {1, "F16", 1, 2, true},          {2, "Q4_0", 32, 18, true},
    {3, "Q4_1", 32, 20, false},      {6, "Q5_0", 32, 22, false},      {7, "Q5_1", 32, 24, false},
    {8, "Q8_0", 32, 34, true},       {9, "Q8_1", 32, 36, false},      {10, "Q2_K", 256, 84, false},
    {11, "Q3_K", 256, 110, false},   {12, "Q4_K", 256, 144, true},    {13, "Q5_K", 256, 176, false},
    {14, "Q6_K", 256, 210, true},    {15, "Q8_K", 256, 292, false},   {16, "IQ2_XXS", 256, 66, false},
    {17, "IQ2_XS", 256, 74, false},  {18, "IQ3_XXS", 256, 98, false}, {19, "IQ1_S", 256, 50, false},
    {20, "IQ4_NL", 32, 18, false},   {21, "IQ3_S", 256, 110, false},  {22, "IQ2_S", 256, 82, false},
    {23, "IQ4_XS", 256, 136, false}, {24, "I8", 1, 1, false},         {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},        {27, "I64", 1, 8, false},        {28, "F64", 1, 8, false},
    {29, "IQ1_M", 256, 56, false},   {30, "BF16", 1, 2, true},        {34, "TQ1_0", 256, 54, false},
    {35, "TQ2_0", 256, 66, false},   {31, "Q4_0_4_4", 32, 18, false}, {32, "Q4_0_4_8", 32, 18, false},
}};
}  // namespace

const TensorTypeInfo* tensor_type_info(uint32_t id) {
    for (const auto& t : kTypes)
        if (t.id == id) return &t;
    return nullptr;
}

const TensorTypeInfo& tensor_type_info(TensorType type) {
    const TensorTypeInfo* t = tensor_type_info(static_cast<uint32_t>(type));
    if (!t) throw Error(ErrorKind::internal, "", "tensor type id missing from the catalogue");
    return *t;
}

const char* tensor_type_name(TensorType type) { return tensor_type_info(type).name; }

const TensorTypeInfo* tensor_type_by_name(std::string_view name) {
    for (const auto& t : kTypes) {
        const std::string_view n = t.name;
        if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
                return std::toupper(static_cast<unsigned char>(a)) == std::toupper(static_cast<unsigned char>(b));
            }))
            return &t;
    }
    return nullptr;
}

std::string supported_tensor_type_names() { return "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K"; }

size_t tensor_row_bytes(TensorType type, int64_t n) {
    const TensorTypeInfo& t = tensor_type_info(type);
    if (n % t.block_size != 0)
        throw Error(ErrorKind::internal, t.name,
                    "row length " + std::to_string(n) + " is not a multiple of the block size");
    return static_cast<size_t>(n / t.block_size * t.block_bytes);
}

}  // namespace critdim
