// Steering values stored in files next to a plan: .npy arrays and GGUF tensors.
#pragma once

#include <string>
#include <vector>

#include "critdim/steer.hpp"

namespace critdim::steer {

// A file name in a plan is relative to the plan's folder (absolute names are kept).
std::string resolve_relative(const std::string& file, const std::string& base_dir);

// [n] (one row for every layer) or [n_rows, n]. `where` prefixes messages ("plan.json: interventions[0].values").
Values values_from_npy(const std::string& file, const std::string& base_dir, const std::string& where);

// One F32 1-D tensor, or with "{layer}" in the name one tensor per listed layer.
Values values_from_gguf(const std::string& file, const std::string& tensor, const std::vector<int>& layers,
                        const std::string& base_dir, const std::string& where);

}  // namespace critdim::steer
