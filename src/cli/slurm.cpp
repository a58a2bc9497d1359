// critdim slurm scan|reproduce|status|resubmit|merge: a scan or reproduce as an ordinary Slurm
// array job plus a merge job (docs/scale-out.md). The job's state lives in its folder; only
// scan, reproduce and resubmit talk to Slurm (sbatch, scancel).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "critdim/scale.hpp"

namespace critdim::cli {
namespace {

std::string task_list(const std::vector<int>& tasks) {
    std::string s;
    for (int t : tasks) s += (s.empty() ? "" : ",") + std::to_string(t);
    return s;
}

void print_submission(const scale::Job& job, const scale::Submission& sub, bool json) {
    if (json) {
        const nlohmann::json j = {{"dir", job.dir},
                                  {"array_job", sub.array_job},
                                  {"merge_job", sub.merge_job},
                                  {"tasks", sub.tasks},
                                  {"out", job.out}};
        std::printf("%s\n", j.dump(2).c_str());
        return;
    }
    std::printf("submitted array job %s (tasks %s of %d) and merge job %s (runs after every task succeeded)\n",
                sub.array_job.c_str(), task_list(sub.tasks).c_str(), job.n_tasks, sub.merge_job.c_str());
    std::printf("job folder %s; result %s\nfollow it with: critdim slurm status %s\n", job.dir.c_str(), job.out.c_str(),
                job.dir.c_str());
}

void print_scripts(const scale::Job& job, const std::vector<int>& tasks) {
    std::printf("# ---- %s/array.sh\n%s# ---- %s/merge.sh (sbatch --dependency=afterok:ARRAY_JOB)\n%s", job.dir.c_str(),
                scale::array_script(job, tasks).c_str(), job.dir.c_str(), scale::merge_script(job).c_str());
}

// Options of one submitting subcommand (scan, reproduce).
struct SubmitOptions {
    int nodes = 0;
    std::string dir;
    scale::SbatchOptions sbatch;
    bool dry_run = false, json = false;
};

void register_slurm_submit(CLI::App& parent, const std::string& kind, const std::string& help,
                           const std::string& footer) {
    auto* cmd = parent.add_subcommand(kind, help);
    static std::map<std::string, SubmitOptions> by_kind;
    SubmitOptions& so = by_kind[kind];  // a map's elements stay where they are
    scale::SbatchOptions& o = so.sbatch;
    cmd->add_option("--nodes", so.nodes, "array tasks (shards), N")->required();
    cmd->add_option("--partition", o.partition, "sbatch --partition");
    cmd->add_option("--time", o.time, "sbatch --time per task (e.g. 2:00:00)");
    cmd->add_option("--mem", o.mem, "sbatch --mem per task (e.g. 8G: model mapping + KV cache + statistics)");
    cmd->add_option("--account", o.account, "sbatch --account");
    cmd->add_option("--cpus-per-task", o.cpus_per_task, "sbatch --cpus-per-task; each task's threads")
        ->capture_default_str();
    cmd->add_option("--sbatch-option", o.extra, "a further #SBATCH line, e.g. --sbatch-option=--qos=long (repeatable)");
    cmd->add_option("--dir", so.dir, "job folder (default: OUT.slurm next to the " + kind + "'s --out)");
    cmd->add_flag("--dry-run", so.dry_run, "print the batch scripts; submit nothing, write nothing");
    cmd->add_flag("--json", so.json, "print the submission as JSON");
    // Everything from the first argument this command does not know belongs to `critdim KIND`
    // (CLI11 2.1 gives no way to take options after a "--" separator).
    cmd->prefix_command();
    cmd->footer(footer);
    cmd->callback([cmd, kind, &so] {
        const std::vector<std::string> args = cmd->remaining();
        if (args.empty())
            throw_usage("slurm " + kind + ": the arguments of `critdim " + kind +
                        "` (MODEL ... --out OUT) are missing");
        const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
        scale::Job job = kind == "scan" ? scale::make_scan_job(so.dir, args, so.nodes, so.sbatch, self)
                                        : scale::make_reproduce_job(so.dir, args, so.nodes, so.sbatch, self);
        std::vector<int> tasks(static_cast<size_t>(so.nodes));
        for (int i = 0; i < so.nodes; ++i) tasks[static_cast<size_t>(i)] = i;
        if (so.dry_run) return print_scripts(job, tasks);
        print_submission(job, scale::submit(job, tasks), so.json);
    });
}

void register_slurm_status(CLI::App& parent) {
    auto* cmd = parent.add_subcommand("status", "shards done, running and failed, from the job folder alone");
    static std::string dir;
    static bool json = false;
    cmd->add_option("dir", dir, "job folder")->required();
    cmd->add_flag("--json", json, "print JSON");
    cmd->callback([] {
        const scale::Job job = scale::Job::load(dir);
        const scale::JobStatus st = scale::job_status(job);
        if (json) {
            nlohmann::json tasks = nlohmann::json::array();
            for (const auto& t : st.tasks) {
                tasks.push_back({{"task", t.task}, {"state", scale::task_state_name(t.state)}, {"detail", t.detail}});
                if (t.docs_done >= 0) tasks.back()["docs_done"] = t.docs_done;
                if (t.steps_done >= 0) tasks.back()["steps_done"] = t.steps_done;
            }
            nlohmann::json counts;
            for (auto s : {scale::TaskState::pending, scale::TaskState::running, scale::TaskState::done,
                           scale::TaskState::failed})
                counts[scale::task_state_name(s)] = st.count(s);
            const nlohmann::json j = {{"dir", job.dir},   {"out", job.out},      {"n_tasks", job.n_tasks},
                                      {"counts", counts}, {"merged", st.merged}, {"tasks", tasks}};
            std::printf("%s\n", j.dump(2).c_str());
            return;
        }
        std::printf("%s: %d tasks: %d done, %d running, %d failed, %d pending; %s\n", job.dir.c_str(), job.n_tasks,
                    st.count(scale::TaskState::done), st.count(scale::TaskState::running),
                    st.count(scale::TaskState::failed), st.count(scale::TaskState::pending),
                    st.merged ? ("merged into " + job.out).c_str() : "not merged");
        for (const auto& t : st.tasks) {
            std::printf("  task %d: %s", t.task, scale::task_state_name(t.state));
            if (!t.detail.empty()) std::printf(" (%s)", t.detail.c_str());
            if (t.docs_done >= 0) std::printf(", %lld documents so far", static_cast<long long>(t.docs_done));
            if (t.steps_done >= 0) std::printf(", %lld steps so far", static_cast<long long>(t.steps_done));
            std::printf("\n");
        }
    });
}

void register_slurm_resubmit(CLI::App& parent) {
    auto* cmd = parent.add_subcommand("resubmit", "submit the failed tasks again (and a new merge job)");
    static std::string dir;
    static bool unfinished = false, dry_run = false, json = false;
    cmd->add_option("dir", dir, "job folder")->required();
    cmd->add_flag("--all-unfinished", unfinished,
                  "also tasks that are pending or running by the files (use when their job is gone)");
    cmd->add_flag("--dry-run", dry_run, "print the batch scripts; submit nothing");
    cmd->add_flag("--json", json, "print the submission as JSON");
    cmd->callback([] {
        scale::Job job = scale::Job::load(dir);
        const std::vector<int> tasks = scale::tasks_to_resubmit(scale::job_status(job), unfinished);
        if (tasks.empty())
            throw_usage(dir + ": no failed task to resubmit" +
                        (unfinished ? std::string() : " (--all-unfinished also takes pending and running ones)"));
        if (dry_run) return print_scripts(job, tasks);
        print_submission(job, scale::submit(job, tasks), json);
    });
}

void register_slurm_merge(CLI::App& parent) {
    auto* cmd = parent.add_subcommand("merge", "merge every shard of a job into its result (what the merge job runs)");
    static std::string dir;
    cmd->add_option("dir", dir, "job folder")->required();
    cmd->callback([] {
        const scale::Job job = scale::Job::load(dir);
        if (job.kind == "reproduce") {
            // reproduce --merge gathers the shards' steps and assembles results.json; it runs in the
            // job's working folder, where its relative paths were given.
            scale::check_shards_complete(job);
            if (chdir(job.workdir.c_str()) != 0)
                throw_io(job.workdir, std::string("cannot enter the job's working folder: ") + std::strerror(errno));
            const char* cpus = std::getenv("SLURM_CPUS_PER_TASK");
            const std::vector<std::string> argv = scale::reproduce_merge_command(job, cpus ? cpus : "");
            std::vector<char*> cargv;
            for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
            cargv.push_back(nullptr);
            std::fflush(stdout);
            execv(cargv[0], cargv.data());
            throw_io(cargv[0], std::string("cannot run: ") + std::strerror(errno));
        }
        scale::merge_shards(job);
        std::printf("%s: %d shards merged\n", job.out.c_str(), job.n_tasks);
    });
}

}  // namespace

void register_slurm(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("slurm", "run scans and reproduce on a Slurm cluster as array jobs (docs/scale-out.md)");
    cmd->require_subcommand(1);
    register_slurm_submit(
        *cmd, "scan", "submit a scan as a Slurm array of N shards plus a merge job",
        "After the options above: the arguments of `critdim scan` (MODEL --corpus ... --out OUT).\n"
        "Example: critdim slurm scan --nodes 8 --time 4:00:00 M.gguf --corpus math/ --out math.stats");
    register_slurm_submit(
        *cmd, "reproduce", "submit reproduce as a Slurm array of N shards plus a merge job (reproduce --merge)",
        "After the options above: the arguments of `critdim reproduce` (MODEL --data DIR --out OUT ...).\n"
        "Example: critdim slurm reproduce --nodes 8 --time 8:00:00 M.gguf --data data/ --out results/");
    register_slurm_status(*cmd);
    register_slurm_resubmit(*cmd);
    register_slurm_merge(*cmd);
}

}  // namespace critdim::cli
