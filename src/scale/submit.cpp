// Submitting through sbatch (and cancelling a superseded merge job through scancel): the only
// place critdim talks to the scheduler. Commands run without a shell; their output is read
// through pipes.
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "critdim/scale.hpp"

extern char** environ;

namespace critdim::scale {
namespace {

namespace fs = std::filesystem;

std::string join(const std::vector<std::string>& argv) {
    std::string s;
    for (const std::string& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

// sbatch --parsable prints "ID" or "ID;CLUSTER".
std::string job_id_of(const std::string& out, const std::string& what) {
    std::string id = out.substr(0, out.find_first_of(";\n"));
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        throw Error(ErrorKind::io, "sbatch", "unexpected reply submitting the " + what + ": '" + out + "'");
    return id;
}

}  // namespace

std::string run_command(const std::vector<std::string>& argv) {
    int out_pipe[2], err_pipe[2];
    if (pipe(out_pipe) != 0) throw_io(argv[0], std::string("pipe: ") + std::strerror(errno));
    if (pipe(err_pipe) != 0) {
        close(out_pipe[0]), close(out_pipe[1]);
        throw_io(argv[0], std::string("pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
    posix_spawn_file_actions_addclose(&fa, err_pipe[0]);
    std::vector<char*> cargv;
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out_pipe[1]), close(err_pipe[1]);
    if (rc != 0) {
        close(out_pipe[0]), close(err_pipe[0]);
        throw_io(argv[0], std::string("cannot run: ") + std::strerror(rc) +
                              (rc == ENOENT ? " (is Slurm installed and on PATH?)" : ""));
    }
    std::string out, err;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_fds = 2;
    char buf[4096];
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (pollfd& p : fds) {
            if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = read(p.fd, buf, sizeof buf);
            if (n > 0) {
                (&p == &fds[0] ? out : err).append(buf, static_cast<size_t>(n));
            } else {
                close(p.fd);
                p.fd = -1;
                --open_fds;
            }
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
        throw Error(
            ErrorKind::io, argv[0],
            "`" + join(argv) + "` failed (" +
                (WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status)) : std::string("killed")) + ")" +
                (err.empty() ? "" : ": " + err));
    }
    return out;
}

void prepare(const Job& job, const std::vector<int>& tasks) {
    for (const char* sub : {"", "/shards", "/status", "/logs"}) {
        std::error_code ec;
        fs::create_directories(job.dir + sub, ec);
        if (ec) throw_io(job.dir + sub, "cannot create the folder: " + ec.message());
    }
    write_file_atomic(job.dir + "/array.sh", array_script(job, tasks));
    write_file_atomic(job.dir + "/merge.sh", merge_script(job));
    job.save();
}

Submission submit(Job& job, const std::vector<int>& tasks) {
    if (tasks.empty()) throw_usage("nothing to submit: no task needs to run");
    // A merge job of an earlier submission waits for tasks that failed: it would never run.
    for (const Submission& s : job.submissions)
        if (!s.merge_job.empty()) {
            try {
                run_command({"scancel", s.merge_job});
            } catch (const Error&) {  // already gone: nothing to cancel
            }
        }
    prepare(job, tasks);
    Submission sub;
    sub.tasks = tasks;
    sub.unix_time =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    sub.array_job = job_id_of(run_command({"sbatch", "--parsable", job.dir + "/array.sh"}), "array job");
    job.submissions.push_back(sub);
    job.save();  // recorded before the merge job, so a failure there still leaves the array known
    job.submissions.back().merge_job =
        job_id_of(run_command({"sbatch", "--parsable", "--dependency=afterok:" + sub.array_job, job.dir + "/merge.sh"}),
                  "merge job");
    job.save();
    return job.submissions.back();
}

}  // namespace critdim::scale
