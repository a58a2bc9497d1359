// The job folder's record, job.json: written when a job is made and at every submission, read
// by status, resubmit and merge (so none of them needs the scheduler).
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "critdim/eval.hpp"
#include "critdim/scale.hpp"

namespace critdim::scale {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kFormat = "critdim.slurm-job";

template <class T>
T field(const json& j, const char* name, const std::string& path) {
    if (!j.contains(name)) throw_input(path, std::string("field '") + name + "' is missing");
    try {
        return j.at(name).get<T>();
    } catch (const json::exception&) {
        throw_input(path, std::string("field '") + name + "' has the wrong type (" + j.at(name).type_name() + ")");
    }
}

// "--out X" or "--out=X": the value and the positions it occupies; nullopt when absent.
std::optional<std::pair<std::string, std::pair<size_t, size_t>>> find_option(const std::vector<std::string>& args,
                                                                             const std::string& name) {
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == name) {
            if (i + 1 >= args.size()) throw_usage("arguments: " + name + " needs a value");
            return std::pair{args[i + 1], std::pair{i, i + 2}};
        }
        if (args[i].rfind(name + "=", 0) == 0) return std::pair{args[i].substr(name.size() + 1), std::pair{i, i + 1}};
    }
    return std::nullopt;
}

}  // namespace

std::string Job::shard_path(int task) const {
    if (kind == "reproduce") return eval::reproduce_shard_dir(out, task, n_tasks) + "/" + eval::kReproduceShardDone;
    return dir + "/" + shard_name(task);
}

std::string Job::shard_name(int task) const {
    if (kind == "reproduce")
        return fs::path(eval::reproduce_shard_dir(out, task, n_tasks)).lexically_relative(out).string();
    return "shards/shard-" + std::to_string(task) + ".stats";
}

std::string Job::result_path() const { return kind == "reproduce" ? out + "/results.json" : out; }

std::string Job::status_path(int task, const char* what) const {
    return dir + "/status/task-" + std::to_string(task) + "." + what;
}

void Job::save() const {
    json subs = json::array();
    for (const Submission& s : submissions)
        subs.push_back(
            {{"array_job", s.array_job}, {"merge_job", s.merge_job}, {"tasks", s.tasks}, {"unix_time", s.unix_time}});
    const json j = {{"format", kFormat},
                    {"version", format_version},
                    {"kind", kind},
                    {"critdim", critdim},
                    {"workdir", workdir},
                    {"args", args},
                    {"out", out},
                    {"n_tasks", n_tasks},
                    {"sbatch",
                     {{"partition", sbatch.partition},
                      {"time", sbatch.time},
                      {"mem", sbatch.mem},
                      {"account", sbatch.account},
                      {"cpus_per_task", sbatch.cpus_per_task},
                      {"extra", sbatch.extra}}},
                    {"submissions", subs}};
    write_file_atomic(dir + "/job.json", j.dump(2) + "\n");
}

Job Job::load(const std::string& dir_) {
    const std::string path = dir_ + "/job.json";
    json j;
    try {
        j = json::parse(read_text_file(path));
    } catch (const json::exception& e) {
        throw_input(path, std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object() || j.value("format", "") != kFormat)
        throw_input(path, std::string("not a critdim job file (field 'format' is not '") + kFormat + "')");
    Job job;
    job.format_version = field<int>(j, "version", path);
    if (job.format_version != 1)
        throw_input(path, "job file version " + std::to_string(job.format_version) + " is not supported (only 1)");
    job.dir = fs::absolute(dir_).lexically_normal().string();
    job.kind = field<std::string>(j, "kind", path);
    if (job.kind != "scan" && job.kind != "reproduce")
        throw_input(path, "field 'kind': '" + job.kind + "' is not supported (scan or reproduce)");
    job.critdim = field<std::string>(j, "critdim", path);
    job.workdir = field<std::string>(j, "workdir", path);
    job.args = field<std::vector<std::string>>(j, "args", path);
    job.out = field<std::string>(j, "out", path);
    job.n_tasks = field<int>(j, "n_tasks", path);
    if (job.n_tasks < 1 || job.n_tasks > (1 << 20))
        throw_input(path, "field 'n_tasks': " + std::to_string(job.n_tasks) + " is out of range");
    const json sb = field<json>(j, "sbatch", path);
    job.sbatch.partition = field<std::string>(sb, "partition", path);
    job.sbatch.time = field<std::string>(sb, "time", path);
    job.sbatch.mem = field<std::string>(sb, "mem", path);
    job.sbatch.account = field<std::string>(sb, "account", path);
    job.sbatch.cpus_per_task = field<int>(sb, "cpus_per_task", path);
    job.sbatch.extra = field<std::vector<std::string>>(sb, "extra", path);
    for (const json& s : field<json>(j, "submissions", path)) {
        Submission sub;
        sub.array_job = field<std::string>(s, "array_job", path);
        sub.merge_job = field<std::string>(s, "merge_job", path);
        sub.tasks = field<std::vector<int>>(s, "tasks", path);
        sub.unix_time = field<int64_t>(s, "unix_time", path);
        for (int t : sub.tasks)
            if (t < 0 || t >= job.n_tasks)
                throw_input(path, "field 'submissions': task " + std::to_string(t) + " is out of range");
        job.submissions.push_back(std::move(sub));
    }
    return job;
}

namespace {

Job make_job(const std::string& kind, const std::string& dir, const std::vector<std::string>& args, int n_tasks,
             const SbatchOptions& sbatch, const std::string& critdim_path) {
    if (n_tasks < 1 || n_tasks > 10000) throw_usage("--nodes: " + std::to_string(n_tasks) + " is not 1..10000");
    if (sbatch.cpus_per_task < 1) throw_usage("--cpus-per-task must be positive");
    Job job;
    job.kind = kind;
    job.args = args;
    const auto out = find_option(job.args, "--out");
    if (!out) throw_usage(kind + " arguments: --out (the merged result) is required");
    if (find_option(job.args, "--shard"))
        throw_usage(kind + " arguments: --shard is chosen per task by critdim slurm; leave it out");
    if (kind == "reproduce" && std::find(job.args.begin(), job.args.end(), "--merge") != job.args.end())
        throw_usage("reproduce arguments: --merge is what the merge job runs; leave it out");
    job.args.erase(job.args.begin() + static_cast<std::ptrdiff_t>(out->second.first),
                   job.args.begin() + static_cast<std::ptrdiff_t>(out->second.second));
    job.out = fs::absolute(out->first).lexically_normal().string();
    job.dir = fs::absolute(dir.empty() ? out->first + ".slurm" : dir).lexically_normal().string();
    job.workdir = fs::current_path().string();
    job.critdim = fs::absolute(critdim_path).lexically_normal().string();
    job.n_tasks = n_tasks;
    job.sbatch = sbatch;
    if (fs::exists(job.dir + "/job.json"))
        throw_usage(job.dir +
                    " already holds a job (job.json); use `critdim slurm status` / `resubmit` on it, or "
                    "choose another --dir");
    return job;
}

}  // namespace

Job make_scan_job(const std::string& dir, const std::vector<std::string>& scan_args, int n_tasks,
                  const SbatchOptions& sbatch, const std::string& critdim_path) {
    return make_job("scan", dir, scan_args, n_tasks, sbatch, critdim_path);
}

Job make_reproduce_job(const std::string& dir, const std::vector<std::string>& reproduce_args, int n_tasks,
                       const SbatchOptions& sbatch, const std::string& critdim_path) {
    return make_job("reproduce", dir, reproduce_args, n_tasks, sbatch, critdim_path);
}

}  // namespace critdim::scale
