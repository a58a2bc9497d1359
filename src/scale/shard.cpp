// --shard auto: the shard of this process from a batch scheduler's environment.
#include <string>

#include "critdim/analysis.hpp"
#include "critdim/scale.hpp"

namespace critdim::scale {
namespace {

// A non-negative integer environment variable, or nullopt when unset.
std::optional<int64_t> env_int(const Environment& env, const char* name) {
    const char* v = env(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    int64_t x = 0;
    for (const char* p = v; *p; ++p) {
        if (*p < '0' || *p > '9' || x > (int64_t{1} << 40))
            throw_usage(std::string("--shard auto: ") + name + "='" + v + "' is not a non-negative integer");
        x = x * 10 + (*p - '0');
    }
    return x;
}

std::pair<int, int> checked(int64_t i, int64_t n, const std::string& from) {
    if (n < 1 || n > (1 << 20) || i < 0 || i >= n)
        throw_usage("--shard auto: " + from + " gives shard " + std::to_string(i) + " of " + std::to_string(n) +
                    " (needs 0 <= I < N)");
    return {static_cast<int>(i), static_cast<int>(n)};
}

}  // namespace

std::pair<int, int> shard_from_environment(const Environment& env) {
    const auto slurm_id = env_int(env, "SLURM_ARRAY_TASK_ID");
    const auto k8s_index = env_int(env, "JOB_COMPLETION_INDEX");
    const auto count = env_int(env, "CRITDIM_SHARD_COUNT");
    if (count) {
        if (slurm_id) return checked(*slurm_id, *count, "SLURM_ARRAY_TASK_ID with CRITDIM_SHARD_COUNT");
        if (k8s_index) return checked(*k8s_index, *count, "JOB_COMPLETION_INDEX with CRITDIM_SHARD_COUNT");
        throw_usage(
            "--shard auto: CRITDIM_SHARD_COUNT is set but neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is");
    }
    if (slurm_id) {
        const auto n = env_int(env, "SLURM_ARRAY_TASK_COUNT");
        if (!n) throw_usage("--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not");
        const int64_t min = env_int(env, "SLURM_ARRAY_TASK_MIN").value_or(0);
        return checked(*slurm_id - min, *n, "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT");
    }
    if (k8s_index)
        throw_usage(
            "--shard auto: a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) needs CRITDIM_SHARD_COUNT set to "
            "the job's completions");
    throw_usage(
        "--shard auto: not inside a Slurm array job (SLURM_ARRAY_TASK_ID is unset) nor a Kubernetes Indexed Job "
        "(JOB_COMPLETION_INDEX is unset); give --shard I/N");
}

std::pair<int, int> parse_shard_option(const std::string& text) {
    if (text == "auto") return shard_from_environment([](const char* name) { return std::getenv(name); });
    return analysis::parse_shard(text);
}

}  // namespace critdim::scale
