// A single-node Slurm cluster on this machine for the tests: munged, slurmctld and slurmd with
// a generated slurm.conf (this host, its real CPU count and memory, one partition), all state
// in a temporary folder, on free ports. SLURM_CONF is set for this process and its children.
#pragma once

#include <string>

namespace critdim::test {

class LocalSlurm {
public:
    // Starts the daemons and waits until the node is idle; throws std::runtime_error with the
    // daemons' log tails when they cannot start (the tests then fail with that message).
    LocalSlurm();
    ~LocalSlurm();  // scontrol shutdown, then the daemons are stopped for sure
    LocalSlurm(const LocalSlurm&) = delete;
    LocalSlurm& operator=(const LocalSlurm&) = delete;

    const std::string& dir() const { return dir_; }
    const std::string& conf() const { return conf_; }
    int cpus() const { return cpus_; }

private:
    void stop();
    std::string dir_, conf_, host_;
    int cpus_ = 1;
};

// Runs a shell command line; returns its exit code, with stdout (and stderr) in `out`.
int shell(const std::string& command, std::string* out = nullptr);

}  // namespace critdim::test
