// --shard auto: the shard from Slurm's array variables, from a Kubernetes Indexed Job's index
// (the same code path as docs/scale-out.md's example), and clear errors outside a scheduler.
#include <gtest/gtest.h>

#include <map>

#include "critdim/scale.hpp"

namespace critdim::scale {
namespace {

std::pair<int, int> shard_in(const std::map<std::string, std::string>& vars) {
    return shard_from_environment([&](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
    });
}

std::string error_in(const std::map<std::string, std::string>& vars) {
    try {
        shard_in(vars);
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage);
        return e.what();
    }
    return "no error";
}

TEST(ShardAuto, SlurmArrayVariables) {
    EXPECT_EQ(shard_in({{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}), std::pair(2, 4));
    // --array=5-8: the first task is shard 0.
    EXPECT_EQ(shard_in({{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "5"}}),
              std::pair(0, 4));
    // The scripts critdim writes fix N, so a resubmitted subset (--array=1,3) keeps its indices.
    EXPECT_EQ(shard_in({{"SLURM_ARRAY_TASK_ID", "3"},
                        {"SLURM_ARRAY_TASK_COUNT", "2"},
                        {"SLURM_ARRAY_TASK_MIN", "1"},
                        {"CRITDIM_SHARD_COUNT", "4"}}),
              std::pair(3, 4));
}

TEST(ShardAuto, KubernetesIndexedJob) {
    EXPECT_EQ(shard_in({{"JOB_COMPLETION_INDEX", "7"}, {"CRITDIM_SHARD_COUNT", "8"}}), std::pair(7, 8));
    EXPECT_EQ(error_in({{"JOB_COMPLETION_INDEX", "7"}}),
              "--shard auto: a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) needs CRITDIM_SHARD_COUNT set to the "
              "job's completions");
}

TEST(ShardAuto, ErrorsNameTheVariable) {
    EXPECT_EQ(error_in({}),
              "--shard auto: not inside a Slurm array job (SLURM_ARRAY_TASK_ID is unset) nor a Kubernetes Indexed Job "
              "(JOB_COMPLETION_INDEX is unset); give --shard I/N");
    EXPECT_EQ(error_in({{"SLURM_ARRAY_TASK_ID", "x1"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}),
              "--shard auto: SLURM_ARRAY_TASK_ID='x1' is not a non-negative integer");
    EXPECT_EQ(error_in({{"SLURM_ARRAY_TASK_ID", "1"}}),
              "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not");
    EXPECT_EQ(error_in({{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}),
              "--shard auto: SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT gives shard 4 of 4 "
              "(needs 0 <= I < N)");
    EXPECT_EQ(error_in({{"CRITDIM_SHARD_COUNT", "4"}}),
              "--shard auto: CRITDIM_SHARD_COUNT is set but neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is");
    EXPECT_EQ(error_in({{"SLURM_ARRAY_TASK_ID", "99999999999999999999"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}),
              "--shard auto: SLURM_ARRAY_TASK_ID='99999999999999999999' is not a non-negative integer");
}

}  // namespace
}  // namespace critdim::scale
