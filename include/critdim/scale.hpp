// critdim scale: running scans and reproduce as ordinary batch-scheduler workloads (../shared/DESIGN.md,
// "Scale beyond one machine"). Nothing here coordinates work itself: a task takes its shard
// from the scheduler's environment, `critdim slurm` writes and submits plain Slurm array jobs
// plus a merge job, and everything about a job's state is read back from files on disk.
//
// A job folder (docs/scale-out.md):
//   job.json            what was asked (command, arguments, tasks, output) and every submission
//   array.sh, merge.sh  the batch scripts, as submitted
//   shards/shard-I.stats (and shard-I.stats.ckpt while task I runs)   scan jobs
//   (reproduce jobs: OUT/shards/shard-I-of-N/, finished when its shard.json is there)
//   status/task-I.started, status/task-I.failed   written by the array script
//   logs/task-I.log, logs/merge.log
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "critdim/base.hpp"

namespace critdim::scale {

// ---------------------------------------------------------------------------------------------
// The shard of this process from the scheduler's environment (`--shard auto`):
//   CRITDIM_SHARD_COUNT set:      I = SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, N = it
//                                 (the scripts critdim writes set it, so a resubmitted subset
//                                 of tasks keeps its indices)
//   Slurm array:                  I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN,
//                                 N = SLURM_ARRAY_TASK_COUNT
//   Kubernetes Indexed Job:       I = JOB_COMPLETION_INDEX, N = CRITDIM_SHARD_COUNT (required)
// A usage error names the variable that is missing or malformed.
using Environment = std::function<const char*(const char*)>;
std::pair<int, int> shard_from_environment(const Environment& env);
// "I/N" or "auto" (from the real environment).
std::pair<int, int> parse_shard_option(const std::string& text);

// ---------------------------------------------------------------------------------------------
// Jobs.

struct SbatchOptions {
    std::string partition, time, mem, account;
    int cpus_per_task = 1;
    std::vector<std::string> extra;  // further sbatch options, as given
};

struct Submission {
    std::string array_job, merge_job;  // Slurm job ids ("" in a dry run)
    std::vector<int> tasks;            // array indices submitted
    int64_t unix_time = 0;
};

struct Job {
    int format_version = 1;
    std::string kind = "scan";      // or "reproduce"
    std::string dir;                // absolute job folder
    std::string critdim;            // absolute path of the critdim executable the tasks run
    std::string workdir;            // the tasks' working folder (where the job was made), for relative paths
    std::vector<std::string> args;  // the command's arguments, without --out and --shard
    std::string out;                // absolute path of the merged result (reproduce: its folder)
    int n_tasks = 0;
    SbatchOptions sbatch;
    std::vector<Submission> submissions;

    std::string shard_path(int task) const;  // dir/shards/shard-I.stats; reproduce: OUT/shards/shard-I-of-N/shard.json
    std::string shard_name(int task) const;  // for messages: shards/shard-I.stats, shards/shard-I-of-N
    std::string result_path() const;         // out; reproduce: OUT/results.json
    std::string status_path(int task, const char* what) const;  // dir/status/task-I.<what>

    static Job load(const std::string& dir);  // dir/job.json, checked field by field
    void save() const;                        // atomically
};

// A new job for `critdim scan ARGS` over n tasks: ARGS must name --out (the merged result) and
// must not name --shard. The folder is created (an existing job.json is refused).
Job make_scan_job(const std::string& dir, const std::vector<std::string>& scan_args, int n_tasks,
                  const SbatchOptions& sbatch, const std::string& critdim_path);

// The same for `critdim reproduce ARGS` (ARGS name --out, the result folder, and neither --shard
// nor --merge): task I computes OUT/shards/shard-I-of-N, the merge job `reproduce --merge`.
Job make_reproduce_job(const std::string& dir, const std::vector<std::string>& reproduce_args, int n_tasks,
                       const SbatchOptions& sbatch, const std::string& critdim_path);

// The batch scripts. `tasks` are the array indices (all for a first submission).
std::string array_script(const Job& job, const std::vector<int>& tasks);
std::string merge_script(const Job& job);

// Creates the job folder, writes array.sh (for `tasks`), merge.sh and job.json: everything
// submit() needs, and all a user needs to submit by hand.
void prepare(const Job& job, const std::vector<int>& tasks);

// ---------------------------------------------------------------------------------------------
// Submission through the scheduler's commands (sbatch, scancel on PATH).

// Runs a command (no shell) and returns its standard output; an io error with its stderr when
// it cannot run or exits non-zero.
std::string run_command(const std::vector<std::string>& argv);

// Writes the scripts and submits the array for `tasks` and a merge job that runs after every
// task succeeded (afterok); records the submission in job.json.
Submission submit(Job& job, const std::vector<int>& tasks);

// ---------------------------------------------------------------------------------------------
// State from the files on disk (no scheduler needed).

enum class TaskState { pending, running, done, failed };
const char* task_state_name(TaskState s);

struct TaskStatus {
    int task = 0;
    TaskState state = TaskState::pending;
    std::string detail;       // failed: the reason the script recorded; running: the job id
    int64_t docs_done = -1;   // running with a checkpoint: documents counted so far
    int64_t steps_done = -1;  // a running reproduce task: step files written so far
};

struct JobStatus {
    std::vector<TaskStatus> tasks;
    bool merged = false;  // the merged result exists and is newer than every shard
    int count(TaskState s) const;
};

JobStatus job_status(const Job& job);

// The tasks to run again: failed ones, and (with include_unfinished) pending and running ones
// whose job is gone.
std::vector<int> tasks_to_resubmit(const JobStatus& status, bool include_unfinished);

// Refuses (input error) an incomplete set of shards, naming each missing or unfinished one.
void check_shards_complete(const Job& job);
// Scan jobs: merges every shard in task order into job.out (after check_shards_complete).
void merge_shards(const Job& job);
// Reproduce jobs: the command the merge runs, `critdim reproduce ARGS --out OUT --merge` (from
// job.workdir), with `-t threads` (the merge job's SLURM_CPUS_PER_TASK) unless ARGS name threads.
std::vector<std::string> reproduce_merge_command(const Job& job, const std::string& threads);

}  // namespace critdim::scale
