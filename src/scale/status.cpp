// A job's state read from its folder alone (shards, checkpoints, the array script's status
// files), and the merge that refuses an incomplete set of shards.
#include <filesystem>

#include "critdim/analysis.hpp"
#include "critdim/scale.hpp"

namespace critdim::scale {
namespace {

namespace fs = std::filesystem;

std::string first_line(const std::string& path) {
    std::string text;
    try {
        text = read_text_file(path);
    } catch (const Error&) {
        return "";
    }
    return text.substr(0, text.find('\n'));
}

}  // namespace

const char* task_state_name(TaskState s) {
    switch (s) {
        case TaskState::pending:
            return "pending";
        case TaskState::running:
            return "running";
        case TaskState::done:
            return "done";
        case TaskState::failed:
            return "failed";
    }
    return "?";
}

int JobStatus::count(TaskState s) const {
    int n = 0;
    for (const TaskStatus& t : tasks) n += t.state == s;
    return n;
}

JobStatus job_status(const Job& job) {
    JobStatus st;
    auto newest_shard = fs::file_time_type::min();  // not {}: file_clock's epoch lies in the future
    for (int i = 0; i < job.n_tasks; ++i) {
        TaskStatus t;
        t.task = i;
        const std::string shard = job.shard_path(i);
        std::error_code ec;
        if (fs::exists(shard, ec)) {
            t.state = TaskState::done;
            newest_shard = std::max(newest_shard, fs::last_write_time(shard, ec));
        } else if (fs::exists(job.status_path(i, "failed"), ec)) {
            t.state = TaskState::failed;
            t.detail = first_line(job.status_path(i, "failed"));
        } else if (fs::exists(job.status_path(i, "started"), ec)) {
            t.state = TaskState::running;
            const std::string started = first_line(job.status_path(i, "started"));
            t.detail = "job " + started.substr(0, started.find(' '));
            if (job.kind == "reproduce") {
                t.steps_done = 0;
                const fs::path steps = fs::path(shard).parent_path() / "steps";
                for (const auto& e : fs::directory_iterator(steps, ec)) t.steps_done += e.path().extension() == ".json";
            } else if (fs::exists(shard + ".ckpt", ec)) {
                try {
                    t.docs_done = analysis::Stats::read(shard + ".ckpt").header.docs_done;
                } catch (const Error&) {  // being replaced right now: no count this time
                }
            }
        }
        st.tasks.push_back(t);
    }
    std::error_code ec;
    st.merged = st.count(TaskState::done) == job.n_tasks && fs::exists(job.result_path(), ec) &&
                fs::last_write_time(job.result_path(), ec) >= newest_shard;
    return st;
}

std::vector<int> tasks_to_resubmit(const JobStatus& status, bool include_unfinished) {
    std::vector<int> tasks;
    for (const TaskStatus& t : status.tasks)
        if (t.state == TaskState::failed || (include_unfinished && t.state != TaskState::done)) tasks.push_back(t.task);
    return tasks;
}

void check_shards_complete(const Job& job) {
    const JobStatus st = job_status(job);
    std::string missing;
    for (const TaskStatus& t : st.tasks)
        if (t.state != TaskState::done)
            missing += (missing.empty() ? "" : ", ") + job.shard_name(t.task) + " (task " + std::to_string(t.task) +
                       " " + task_state_name(t.state) + (t.detail.empty() ? "" : ": " + t.detail) + ")";
    if (!missing.empty())
        throw_input(job.dir, "cannot merge: missing shards " + missing +
                                 "; see `critdim slurm status` and `critdim slurm resubmit`");
}

void merge_shards(const Job& job) {
    if (job.kind != "scan") throw_usage(job.dir + ": a " + job.kind + " job merges with reproduce --merge");
    check_shards_complete(job);
    analysis::Stats merged;
    for (int i = 0; i < job.n_tasks; ++i) {
        const std::string path = job.shard_path(i);
        analysis::Stats shard = analysis::Stats::read(path);
        const std::string want = std::to_string(i) + "/" + std::to_string(job.n_tasks);
        if (!shard.header.complete) throw_input(path, "is a checkpoint, not a finished shard");
        if (shard.header.shards != std::vector<std::string>{want})
            throw_input(path, "holds shard(s) " +
                                  (shard.header.shards.empty() ? std::string("none") : shard.header.shards.front()) +
                                  ", expected " + want);
        if (i == 0)
            merged = std::move(shard);
        else
            analysis::merge_into(merged, shard, path);
    }
    merged.write(job.out);
}

}  // namespace critdim::scale
