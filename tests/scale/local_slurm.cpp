#include "scale/local_slurm.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace critdim::test {
namespace {

int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("local Slurm: no free port");
    const int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

std::string tail_of(const std::string& path) {
    std::string out;
    shell("tail -n 15 '" + path + "' 2>/dev/null", &out);
    return out;
}

int64_t memory_mib() {
    std::ifstream f("/proc/meminfo");
    std::string key;
    int64_t kib = 0;
    while (f >> key >> kib)
        if (key == "MemTotal:") return kib / 1024;
    return 1024;
}

}  // namespace

int shell(const std::string& command, std::string* out) {
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p) return -1;
    char buf[4096];
    std::string text;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    const int status = pclose(p);
    if (out) *out = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

LocalSlurm::LocalSlurm() {
    for (const char* tool : {"munged", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo"})
        if (shell(std::string("command -v ") + tool + " >/dev/null || test -x /usr/sbin/" + tool) != 0)
            throw std::runtime_error(std::string("local Slurm: '") + tool +
                                     "' is not installed (scripts/setup.sh installs slurm-wlm and munge)");
    // Its own folder, not test::temp_dir's: that one is removed at exit, possibly before this
    // cluster is stopped, and the daemons need their pid files and configuration to stop.
    char tmpl[] = "/tmp/critdim-slurm-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("local Slurm: cannot create a folder in /tmp");
    dir_ = tmpl;
    conf_ = dir_ + "/slurm.conf";
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    host_ = std::string(host).substr(0, std::string(host).find('.'));
    cpus_ = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
    shell("mkdir -p '" + dir_ + "/state' '" + dir_ + "/spool' '" + dir_ + "/log'");
    // munge refuses keys that others can read.
    shell("head -c 1024 /dev/urandom > '" + dir_ + "/munge.key' && chmod 400 '" + dir_ + "/munge.key'");
    const std::string sock = dir_ + "/munge.sock";
    std::ofstream(conf_) << "ClusterName=critdimtest\nSlurmctldHost=" << host_
                         << "\nSlurmUser=" << (getuid() == 0 ? "root" : std::getenv("USER"))
                         << "\nSlurmctldPort=" << free_port() << "\nSlurmdPort=" << free_port()
                         << "\nAuthType=auth/munge\nAuthInfo=socket=" << sock << "\nCredType=cred/munge\n"
                         << "StateSaveLocation=" << dir_ << "/state\nSlurmdSpoolDir=" << dir_ << "/spool\n"
                         << "SlurmctldPidFile=" << dir_ << "/slurmctld.pid\nSlurmdPidFile=" << dir_ << "/slurmd.pid\n"
                         << "SlurmctldLogFile=" << dir_ << "/log/slurmctld.log\nSlurmdLogFile=" << dir_
                         << "/log/slurmd.log\n"
                         << "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSwitchType=switch/none\n"
                         << "MpiDefault=none\nReturnToService=2\nSchedulerType=sched/backfill\n"
                         << "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\nJobCompType=jobcomp/none\n"
                         << "AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\n"
                         << "SchedulerParameters=sched_interval=1\nMinJobAge=600\nKillWait=5\nWaittime=0\n"
                         << "NodeName=" << host_ << " CPUs=" << cpus_ << " RealMemory=" << memory_mib() * 8 / 10
                         << " State=UNKNOWN\nPartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n";
    setenv("SLURM_CONF", conf_.c_str(), 1);
    std::string out;
    if (shell("munged -f --key-file='" + dir_ + "/munge.key' --socket='" + sock + "' --pid-file='" + dir_ +
                  "/munged.pid' --log-file='" + dir_ + "/log/munged.log' --seed-file='" + dir_ + "/munge.seed'",
              &out) != 0)
        throw std::runtime_error("local Slurm: munged did not start: " + out + tail_of(dir_ + "/log/munged.log"));
    for (const std::string daemon : {"slurmctld -i", "slurmd"}) {
        if (shell(daemon + " -f '" + conf_ + "'", &out) == 0) continue;
        const std::string name = daemon.substr(0, daemon.find(' '));
        const std::string why =
            "local Slurm: " + name + " did not start: " + out + tail_of(dir_ + "/log/" + name + ".log");
        stop();
        throw std::runtime_error(why);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        if (shell("sinfo -h -o %T", &out) == 0 && out.find("idle") != std::string::npos) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    const std::string why = "local Slurm: the node did not become idle in 60 s (sinfo: " + out + ")\n" +
                            tail_of(dir_ + "/log/slurmctld.log") + tail_of(dir_ + "/log/slurmd.log");
    stop();
    throw std::runtime_error(why);
}

LocalSlurm::~LocalSlurm() { stop(); }

void LocalSlurm::stop() {
    shell("scontrol shutdown >/dev/null");
    // Whatever did not stop within 10 s is killed, so no daemon outlives the test.
    for (const char* pid : {"slurmd.pid", "slurmctld.pid", "munged.pid"}) {
        const std::string f = dir_ + "/" + pid;
        // A daemon counts as gone once it is a zombie: in a container nobody may reap it.
        shell("p=$(cat '" + f +
              "' 2>/dev/null) && [ -n \"$p\" ] && { kill \"$p\" 2>/dev/null; for i in $(seq 100); do "
              "s=$(ps -o stat= -p \"$p\" 2>/dev/null); [ -z \"$s\" ] || [ \"${s#Z}\" != \"$s\" ] && break; sleep 0.1; "
              "done; kill -9 \"$p\" 2>/dev/null; }; true");
    }
    shell("rm -rf '" + dir_ + "'");
}

}  // namespace critdim::test
