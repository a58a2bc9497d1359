// The batch scripts critdim slurm submits: an array whose task I scans shard I of N (resuming
// from its checkpoint when rerun) or computes reproduce's shard I of N (resuming from its step
// files), and a merge job. Both are plain bash with #SBATCH lines, so
// a user can read, keep and resubmit them by hand.
#include <fmt/format.h>

#include "critdim/scale.hpp"

namespace critdim::scale {
namespace {

// One shell word: single quotes, with ' written as '\''.
std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string sbatch_lines(const Job& job, const std::string& name, const std::string& log) {
    std::string s = "#SBATCH --job-name=" + name + "\n#SBATCH --output=" + log + "\n";
    const SbatchOptions& o = job.sbatch;
    if (!o.partition.empty()) s += "#SBATCH --partition=" + o.partition + "\n";
    if (!o.time.empty()) s += "#SBATCH --time=" + o.time + "\n";
    if (!o.mem.empty()) s += "#SBATCH --mem=" + o.mem + "\n";
    if (!o.account.empty()) s += "#SBATCH --account=" + o.account + "\n";
    for (const std::string& e : o.extra) s += "#SBATCH " + e + "\n";
    return s;
}

bool names_threads(const std::vector<std::string>& args) {
    for (const std::string& a : args)
        if (a == "-t" || a == "--threads" || a.rfind("--threads=", 0) == 0) return true;
    return false;
}

}  // namespace

std::string array_script(const Job& job, const std::vector<int>& tasks) {
    std::string list;
    for (int t : tasks) list += (list.empty() ? "" : ",") + std::to_string(t);
    const bool reproduce = job.kind == "reproduce";
    std::string cmd = quote(job.critdim) + " " + job.kind;
    for (const std::string& a : job.args) cmd += " " + quote(a);
    if (!names_threads(job.args)) cmd += " -t \"${SLURM_CPUS_PER_TASK:-1}\"";
    cmd += reproduce ? " --shard auto --out " + quote(job.out) : " --shard auto --out \"$d/shards/shard-$i.stats\"";
    const std::string what =
        reproduce
            ? "computes reproduce's shard I of {n} into\n# OUT/shards/shard-I-of-{n}/ (resuming from its step files "
              "when rerun)"
            : "scans shard I of {n} into\n# shards/shard-I.stats (resuming from shards/shard-I.stats.ckpt when "
              "rerun)";
    return fmt::format(
        R"SH(#!/bin/bash
# Written by critdim slurm {kind}: task I of this array {what} and records its
# state in status/ for `critdim slurm status`.
{sbatch}#SBATCH --array={list}
#SBATCH --cpus-per-task={cpus}
set -u
d={dir}
i=${{SLURM_ARRAY_TASK_ID:?not a Slurm array task}}
export CRITDIM_SHARD_COUNT={n}
cd {workdir} || exit 1
rm -f "$d/status/task-$i.failed"
echo "${{SLURM_ARRAY_JOB_ID:-}}_$i $(date +%s)" > "$d/status/task-$i.started"
{cmd} &
child=$!
# scancel sends SIGTERM: pass it on and record the task as failed (resubmit picks it up).
trap 'kill -TERM $child 2>/dev/null; wait $child; echo "cancelled (SIGTERM)" > "$d/status/task-$i.failed"; exit 143' TERM
wait $child
rc=$?
[ $rc -eq 0 ] || echo "exit code $rc (log: $d/logs/task-$i.log)" > "$d/status/task-$i.failed"
exit $rc
)SH",
        fmt::arg("n", job.n_tasks), fmt::arg("kind", job.kind),
        fmt::arg("what", fmt::format(fmt::runtime(what), fmt::arg("n", job.n_tasks))),
        fmt::arg("sbatch", sbatch_lines(job, "critdim-" + job.kind, job.dir + "/logs/task-%a.log")),
        fmt::arg("list", list), fmt::arg("cpus", job.sbatch.cpus_per_task), fmt::arg("dir", quote(job.dir)),
        fmt::arg("workdir", quote(job.workdir)), fmt::arg("cmd", cmd));
}

std::string merge_script(const Job& job) {
    // A scan's merge adds files; reproduce's also generates (the jailbreak evaluations at the
    // chosen alphas), so it gets a task's CPUs.
    return fmt::format(
        R"SH(#!/bin/bash
# Written by critdim slurm {kind}: merges the {n} shards into the result once every task succeeded.
{sbatch}#SBATCH --cpus-per-task={cpus}
cd {workdir} || exit 1
exec {critdim} slurm merge {dir}
)SH",
        fmt::arg("n", job.n_tasks), fmt::arg("kind", job.kind),
        fmt::arg("sbatch", sbatch_lines(job, "critdim-merge", job.dir + "/logs/merge.log")),
        fmt::arg("cpus", job.kind == "reproduce" ? job.sbatch.cpus_per_task : 1),
        fmt::arg("workdir", quote(job.workdir)), fmt::arg("critdim", quote(job.critdim)),
        fmt::arg("dir", quote(job.dir)));
}

std::vector<std::string> reproduce_merge_command(const Job& job, const std::string& threads) {
    std::vector<std::string> argv = {job.critdim, "reproduce"};
    argv.insert(argv.end(), job.args.begin(), job.args.end());
    if (!threads.empty() && !names_threads(job.args)) argv.insert(argv.end(), {"-t", threads});
    argv.insert(argv.end(), {"--out", job.out, "--merge"});
    return argv;
}

}  // namespace critdim::scale
