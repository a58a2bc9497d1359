// critdim slurm on a real single-node Slurm (local_slurm.cpp): a 4-task scan array plus its
// merge job equals one process; a task cancelled mid-run with scancel and resubmitted resumes
// from its checkpoint and the merged result is still identical; reproduce in its reduced
// setting over 3 tasks equals one process.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "analysis/stats_compare.hpp"
#include "critdim/analysis.hpp"
#include "critdim/scale.hpp"
#include "scale/local_slurm.hpp"
#include "scale/scale_test_util.hpp"
#include "test_util.hpp"

namespace critdim::scale {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One cluster for every test of this binary, stopped in the environment's TearDown (before
// static destruction); a cluster that cannot start fails each test with the daemons' messages.
class ClusterEnvironment : public ::testing::Environment {
public:
    test::LocalSlurm& get() {
        if (!cluster_ && error_.empty()) {
            try {
                cluster_ = std::make_unique<test::LocalSlurm>();
            } catch (const std::exception& e) {
                error_ = e.what();
            }
        }
        if (!cluster_) throw std::runtime_error(error_);
        return *cluster_;
    }
    void TearDown() override { cluster_.reset(); }

private:
    std::unique_ptr<test::LocalSlurm> cluster_;
    std::string error_;
};

ClusterEnvironment* const environment =
    static_cast<ClusterEnvironment*>(::testing::AddGlobalTestEnvironment(new ClusterEnvironment));

test::LocalSlurm& cluster() { return environment->get(); }

constexpr int kLines = 6000;

std::vector<std::string> scan_args(const std::string& out) {
    // Small batches and frequent checkpoints: task 1 is still running with a checkpoint when
    // the cancel test looks for one.
    return {test::scale_model(),
            "--corpus",
            test::scale_corpus(kLines),
            "--policy",
            "all",
            "--batch",
            "16",
            "-t",
            "1",
            "--checkpoint-docs",
            "25",
            "--out",
            out};
}

// The one-process scan and the hand-run shards merged in order (computed once).
const std::string& reference(const char* which) {
    static const std::string dir = [] {
        const std::string d = test::temp_dir("slurm-ref");
        std::vector<std::string> one = {"scan"};
        for (const auto& s : scan_args(d + "/one.stats")) one.push_back(s);
        EXPECT_EQ(test::run_critdim(one).exit_code, 0);
        std::vector<std::string> merge = {"merge"};
        for (int i = 0; i < 4; ++i) {
            std::vector<std::string> a = {"scan", "--shard", std::to_string(i) + "/4"};
            for (const auto& s : scan_args(d + "/s" + std::to_string(i) + ".stats")) a.push_back(s);
            EXPECT_EQ(test::run_critdim(a).exit_code, 0);
            merge.push_back(d + "/s" + std::to_string(i) + ".stats");
        }
        merge.insert(merge.end(), {"--out", d + "/hand.stats"});
        EXPECT_EQ(test::run_critdim(merge).exit_code, 0);
        return d;
    }();
    static std::string path;
    path = dir + "/" + which + ".stats";
    return path;
}

nlohmann::json submit_scan(const std::string& out) {
    std::vector<std::string> a = {"slurm", "scan", "--nodes", "4", "--json"};
    for (const auto& s : scan_args(out)) a.push_back(s);
    const auto r = test::run_critdim(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out);
}

// Polls the job folder until `done` holds (or fails the test after `seconds`).
bool wait_for(const Job& job, const std::function<bool(const JobStatus&)>& done, int seconds) {
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < deadline) {
        if (done(job_status(job))) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::string out;
    test::shell("squeue; cat '" + job.dir + "'/logs/*.log", &out);
    ADD_FAILURE() << "timed out after " << seconds << " s; squeue and logs:\n" << out;
    return false;
}

void expect_equals_references(const std::string& out) {
    const analysis::Stats merged = analysis::Stats::read(out);
    EXPECT_EQ(merged.header.shards, (std::vector<std::string>{"0/4", "1/4", "2/4", "3/4"}));
    test::expect_same_stats(analysis::Stats::read(reference("hand")), merged, /*exact_sums=*/true);
    test::expect_same_stats(analysis::Stats::read(reference("one")), merged, /*exact_sums=*/false);
}

TEST(SlurmCluster, FourTaskArrayPlusMergeEqualsOneProcess) {
    cluster();
    reference("one");
    const std::string dir = test::temp_dir("slurm-array");
    const auto t0 = Clock::now();
    const nlohmann::json sub = submit_scan(dir + "/out.stats");
    const Job job = Job::load(sub["dir"]);
    EXPECT_EQ(job.submissions.size(), 1u);
    EXPECT_EQ(job.submissions[0].array_job, sub["array_job"]);
    ASSERT_TRUE(wait_for(
        job, [](const JobStatus& s) { return s.merged; }, 600));
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("[ measure  ] 4-task array + merge of %d documents: %.1f s wall from submission to merged result\n",
                kLines, wall);
    expect_equals_references(dir + "/out.stats");
    std::string log;
    test::shell("cat '" + job.dir + "/logs/merge.log'", &log);
    EXPECT_NE(log.find("4 shards merged"), std::string::npos) << log;
}

TEST(SlurmCluster, CancelledTaskIsResubmittedAndResumesToTheSameResult) {
    cluster();
    reference("one");
    const std::string dir = test::temp_dir("slurm-cancel");
    const nlohmann::json sub = submit_scan(dir + "/out.stats");
    const Job job = Job::load(sub["dir"]);
    // Cancel task 1 once it has written a checkpoint (so the rerun must resume from it).
    const auto deadline = Clock::now() + std::chrono::seconds(300);
    while (!fs::exists(job.shard_path(1) + ".ckpt") && !fs::exists(job.shard_path(1)) && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_FALSE(fs::exists(job.shard_path(1))) << "task 1 finished before it could be cancelled";
    ASSERT_TRUE(fs::exists(job.shard_path(1) + ".ckpt"));
    std::string out;
    ASSERT_EQ(test::shell("scancel " + sub["array_job"].get<std::string>() + "_1", &out), 0) << out;
    ASSERT_TRUE(wait_for(
        job, [](const JobStatus& s) { return s.count(TaskState::done) == 3 && s.tasks[1].state == TaskState::failed; },
        600));
    EXPECT_EQ(job_status(job).tasks[1].detail, "cancelled (SIGTERM)");
    EXPECT_FALSE(fs::exists(dir + "/out.stats")) << "the merge job must not run after a failed task";
    const int64_t resumed_from = analysis::Stats::read(job.shard_path(1) + ".ckpt").header.docs_done;
    EXPECT_GT(resumed_from, 0);

    const auto re = test::run_critdim({"slurm", "resubmit", job.dir, "--json"});
    ASSERT_EQ(re.exit_code, 0) << re.err;
    const auto resub = nlohmann::json::parse(re.out);
    EXPECT_EQ(resub["tasks"], nlohmann::json::array({1}));
    ASSERT_TRUE(wait_for(
        job, [](const JobStatus& s) { return s.merged; }, 600));
    const Job after = Job::load(job.dir);
    ASSERT_EQ(after.submissions.size(), 2u);
    // The first merge job was cancelled (it waited on a failed array); the second one merged.
    test::shell("scontrol show job " + after.submissions[0].merge_job + " | grep -o 'JobState=[A-Z]*'", &out);
    EXPECT_NE(out.find("JobState=CANCELLED"), std::string::npos) << out;
    std::string log;
    test::shell("cat '" + job.dir + "/logs/task-1.log'", &log);
    EXPECT_NE(log.find("(resumed)"), std::string::npos) << "task 1 should resume from its checkpoint:\n" << log;
    expect_equals_references(dir + "/out.stats");
}

// The Proof for reproduce: submitted over 3 tasks plus the merge job, the merged results.json
// equals one process's (timing fields aside). CRITDIM_SLURM_REPEAT=R submits it R times and
// prints the median wall time next to one process's (docs/scale-out.md).
TEST(SlurmCluster, ReproduceOverThreeTasksEqualsOneProcess) {
    cluster();
    const nlohmann::json& one = test::reduced_reproduce_reference();
    const char* repeat_env = std::getenv("CRITDIM_SLURM_REPEAT");
    const int repeat = repeat_env ? std::max(1, std::atoi(repeat_env)) : 1;
    std::vector<double> array_walls, one_walls;
    for (int run = 0; run < repeat; ++run) {
        const std::string dir = test::temp_dir("slurm-reproduce");
        std::vector<std::string> a = {"slurm", "reproduce", "--nodes", "3", "--json"};
        for (const auto& s : test::reduced_reproduce_args()) a.push_back(s);
        a.insert(a.end(), {"--out", dir + "/out"});
        const auto t0 = Clock::now();
        const auto r = test::run_critdim(a);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const Job job = Job::load(nlohmann::json::parse(r.out)["dir"]);
        EXPECT_EQ(job.kind, "reproduce");
        ASSERT_TRUE(wait_for(
            job, [](const JobStatus& s) { return s.merged; }, 600));
        array_walls.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        test::expect_same_results(one, nlohmann::json::parse(read_text_file(dir + "/out/results.json")));
        if (repeat > 1) {  // one process on the same machine, for the comparison
            std::vector<std::string> b = {"reproduce"};
            for (const auto& s : test::reduced_reproduce_args()) b.push_back(s);
            b.insert(b.end(), {"--out", dir + "/one"});
            const auto t1 = Clock::now();
            EXPECT_EQ(test::run_critdim(b).exit_code, 0);
            one_walls.push_back(std::chrono::duration<double>(Clock::now() - t1).count());
        }
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0.0 : v[v.size() / 2];
    };
    std::printf("[ measure  ] reduced reproduce, 3-task array + merge: median %.1f s wall over %d runs",
                median(array_walls), repeat);
    if (!one_walls.empty()) std::printf("; one process: median %.1f s", median(one_walls));
    std::printf("\n");
}

// A reproduce task cancelled with scancel before it could finish (right after submission), then
// resubmitted alone: the new array keeps its index, the new merge job merges, and the result
// still equals one process's. (A task killed mid-run resumes from its step files:
// SlurmJob.ReproduceArrayScriptRunWithSlurmVariablesMergesToOneProcessRun.)
TEST(SlurmCluster, CancelledReproduceTaskIsResubmittedToTheSameResult) {
    cluster();
    const nlohmann::json& one = test::reduced_reproduce_reference();
    const std::string dir = test::temp_dir("slurm-reproduce-cancel");
    std::vector<std::string> a = {"slurm", "reproduce", "--nodes", "3", "--json"};
    for (const auto& s : test::reduced_reproduce_args()) a.push_back(s);
    a.insert(a.end(), {"--out", dir + "/out"});
    const auto r = test::run_critdim(a);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json sub = nlohmann::json::parse(r.out);
    const std::string array = sub["array_job"];
    std::string out;
    ASSERT_EQ(test::shell("scancel " + array + "_2", &out), 0) << out;
    const Job job = Job::load(sub["dir"]);
    // Tasks 0 and 1 finish; task 2 is gone from the queue (cancelled pending, or while starting).
    ASSERT_TRUE(wait_for(
        job,
        [&](const JobStatus& s) {
            if (s.count(TaskState::done) < 2) return false;
            std::string q;
            test::shell("squeue -h -r -o %i -j " + array + " 2>/dev/null", &q);
            return q.find(array + "_2") == std::string::npos;
        },
        600));
    EXPECT_NE(job_status(job).tasks[2].state, TaskState::done);
    EXPECT_FALSE(fs::exists(dir + "/out/results.json")) << "the merge job must not run after a cancelled task";

    const auto re = test::run_critdim({"slurm", "resubmit", job.dir, "--all-unfinished", "--json"});
    ASSERT_EQ(re.exit_code, 0) << re.err;
    EXPECT_EQ(nlohmann::json::parse(re.out)["tasks"], nlohmann::json::array({2}));
    ASSERT_TRUE(wait_for(
        job, [](const JobStatus& s) { return s.merged; }, 600));
    EXPECT_EQ(Job::load(job.dir).submissions.size(), 2u);
    test::expect_same_results(one, nlohmann::json::parse(read_text_file(dir + "/out/results.json")));
}

}  // namespace
}  // namespace critdim::scale
