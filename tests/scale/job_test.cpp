// critdim slurm without a cluster: the dry run, the array script run by bash as Slurm would run
// it (merged result equal to one process), status read from files alone, and a merge that
// names the missing shards.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/stats_compare.hpp"
#include "critdim/analysis.hpp"
#include "critdim/scale.hpp"
#include "scale/local_slurm.hpp"
#include "scale/scale_test_util.hpp"
#include "test_util.hpp"

namespace critdim::scale {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> slurm_scan(const std::string& out, int nodes, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"slurm", "scan", "--nodes", std::to_string(nodes)};
    a.insert(a.end(), extra.begin(), extra.end());
    for (const auto& s : test::scale_scan_args(40)) a.push_back(s);
    a.insert(a.end(), {"--out", out});
    return a;
}

TEST(SlurmJob, DryRunPrintsTheScriptsAndWritesNothing) {
    const std::string dir = test::temp_dir("slurm-dry");
    const auto r = test::run_critdim(slurm_scan(dir + "/out.stats", 4,
                                                {"--dry-run", "--partition", "cpu", "--time", "1:00:00", "--mem", "4G",
                                                 "--cpus-per-task", "2", "--sbatch-option=--qos=long"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const std::string& line : std::vector<std::string>{
             "# ---- " + dir + "/out.stats.slurm/array.sh", "#SBATCH --job-name=critdim-scan",
             "#SBATCH --output=" + dir + "/out.stats.slurm/logs/task-%a.log", "#SBATCH --partition=cpu",
             "#SBATCH --time=1:00:00", "#SBATCH --mem=4G", "#SBATCH --qos=long", "#SBATCH --array=0,1,2,3",
             "#SBATCH --cpus-per-task=2", "export CRITDIM_SHARD_COUNT=4",
             "'--policy' 'all' '--batch' '64' '-t' '1' --shard auto --out \"$d/shards/shard-$i.stats\" &",
             "# ---- " + dir + "/out.stats.slurm/merge.sh (sbatch --dependency=afterok:ARRAY_JOB)",
             "#SBATCH --job-name=critdim-merge", "#SBATCH --output=" + dir + "/out.stats.slurm/logs/merge.log",
             "slurm merge '" + dir + "/out.stats.slurm'"})
        EXPECT_NE(r.out.find(line), std::string::npos) << "missing: " << line << "\n" << r.out;
    EXPECT_FALSE(fs::exists(dir + "/out.stats.slurm")) << "a dry run writes nothing";

    // Bad requests are usage errors naming what is wrong.
    auto bad = test::run_critdim(
        {"slurm", "scan", "--nodes", "2", "--dry-run", test::scale_model(), "--corpus", test::scale_corpus(40)});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("scan arguments: --out (the merged result) is required"), std::string::npos) << bad.err;
    std::vector<std::string> sharded = slurm_scan(dir + "/o.stats", 2, {"--dry-run"});
    sharded.insert(sharded.end(), {"--shard", "0/2"});
    bad = test::run_critdim(sharded);
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--shard is chosen per task by critdim slurm"), std::string::npos) << bad.err;
    bad = test::run_critdim(slurm_scan(dir + "/o.stats", 0, {"--dry-run"}));
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--nodes: 0 is not 1..10000"), std::string::npos) << bad.err;
}

// The array script, run by bash with the variables Slurm sets, then the merge job's command.
TEST(SlurmJob, ArrayScriptRunWithSlurmVariablesMergesToOneProcessScan) {
    const std::string dir = test::temp_dir("slurm-bash");
    std::vector<std::string> args = test::scale_scan_args(40);
    args.insert(args.end(), {"--out", dir + "/out.stats"});
    const Job job = make_scan_job("", args, 4, {}, test::critdim_binary());
    prepare(job, {0, 1, 2, 3});
    EXPECT_EQ(Job::load(job.dir).args, job.args);
    for (int i = 0; i < 4; ++i) {
        std::string out;
        ASSERT_EQ(test::shell("SLURM_ARRAY_JOB_ID=77 SLURM_ARRAY_TASK_ID=" + std::to_string(i) + " bash '" + job.dir +
                                  "/array.sh'",
                              &out),
                  0)
            << out;
    }
    const JobStatus before = job_status(job);
    EXPECT_EQ(before.count(TaskState::done), 4);
    EXPECT_FALSE(before.merged);
    const auto m = test::run_critdim({"slurm", "merge", job.dir});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    EXPECT_TRUE(job_status(job).merged) << test::run_critdim({"slurm", "status", job.dir, "--json"}).out << m.out;

    // The same shards scanned by hand and merged in order: identical; one pass: equal up to the
    // summation order.
    std::vector<std::string> shards;
    for (int i = 0; i < 4; ++i) {
        std::vector<std::string> a = {"scan"};
        for (const auto& s : test::scale_scan_args(40)) a.push_back(s);
        shards.push_back(dir + "/hand-" + std::to_string(i) + ".stats");
        a.insert(a.end(), {"--shard", std::to_string(i) + "/4", "--out", shards.back()});
        ASSERT_EQ(test::run_critdim(a).exit_code, 0);
    }
    std::vector<std::string> merge = {"merge"};
    merge.insert(merge.end(), shards.begin(), shards.end());
    merge.insert(merge.end(), {"--out", dir + "/hand.stats"});
    ASSERT_EQ(test::run_critdim(merge).exit_code, 0);
    std::vector<std::string> one = {"scan"};
    for (const auto& s : test::scale_scan_args(40)) one.push_back(s);
    one.insert(one.end(), {"--out", dir + "/one.stats"});
    ASSERT_EQ(test::run_critdim(one).exit_code, 0);
    const analysis::Stats merged = analysis::Stats::read(dir + "/out.stats");
    EXPECT_EQ(merged.header.shards, (std::vector<std::string>{"0/4", "1/4", "2/4", "3/4"}));
    test::expect_same_stats(analysis::Stats::read(dir + "/hand.stats"), merged, /*exact_sums=*/true);
    test::expect_same_stats(analysis::Stats::read(dir + "/one.stats"), merged, /*exact_sums=*/false);
}

TEST(SlurmJob, StatusFromFilesAndAMergeThatNamesMissingShards) {
    const std::string dir = test::temp_dir("slurm-status");
    std::vector<std::string> args = test::scale_scan_args(40);
    args.insert(args.end(), {"--out", dir + "/out.stats"});
    const Job job = make_scan_job(dir + "/job", args, 4, {}, test::critdim_binary());
    prepare(job, {0, 1, 2, 3});
    // Task 0 finished, task 1 failed, task 2 runs, task 3 never started.
    ASSERT_EQ(test::shell("SLURM_ARRAY_JOB_ID=5 SLURM_ARRAY_TASK_ID=0 bash '" + job.dir + "/array.sh'"), 0);
    std::ofstream(job.status_path(1, "started")) << "5_1 1700000000\n";
    std::ofstream(job.status_path(1, "failed")) << "cancelled (SIGTERM)\n";
    std::ofstream(job.status_path(2, "started")) << "5_2 1700000000\n";

    const auto st = test::run_critdim({"slurm", "status", job.dir, "--json"});
    ASSERT_EQ(st.exit_code, 0) << st.err;
    const auto j = nlohmann::json::parse(st.out);
    EXPECT_EQ(j["counts"]["done"], 1);
    EXPECT_EQ(j["counts"]["failed"], 1);
    EXPECT_EQ(j["counts"]["running"], 1);
    EXPECT_EQ(j["counts"]["pending"], 1);
    EXPECT_EQ(j["merged"], false);
    EXPECT_EQ(j["tasks"][1]["detail"], "cancelled (SIGTERM)");
    EXPECT_EQ(j["tasks"][2]["detail"], "job 5_2");
    const auto text = test::run_critdim({"slurm", "status", job.dir});
    EXPECT_NE(text.out.find("4 tasks: 1 done, 1 running, 1 failed, 1 pending; not merged"), std::string::npos)
        << text.out;

    EXPECT_EQ(tasks_to_resubmit(job_status(job), false), std::vector<int>{1});
    EXPECT_EQ(tasks_to_resubmit(job_status(job), true), (std::vector<int>{1, 2, 3}));
    const auto dry = test::run_critdim({"slurm", "resubmit", job.dir, "--dry-run"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("#SBATCH --array=1\n"), std::string::npos) << dry.out;

    const auto m = test::run_critdim({"slurm", "merge", job.dir});
    EXPECT_EQ(m.exit_code, 3);
    EXPECT_NE(m.err.find(job.dir +
                         ": cannot merge: missing shards shards/shard-1.stats (task 1 failed: cancelled (SIGTERM)), "
                         "shards/shard-2.stats (task 2 running: job 5_2), shards/shard-3.stats (task 3 pending)"),
              std::string::npos)
        << m.err;
    EXPECT_FALSE(fs::exists(dir + "/out.stats"));

    // A broken job file is an input error naming the field.
    fs::create_directories(dir + "/bad");
    std::ofstream(dir + "/bad/job.json") << R"({"format": "critdim.slurm-job", "version": 1, "kind": "scan"})";
    const auto bad = test::run_critdim({"slurm", "status", dir + "/bad"});
    EXPECT_EQ(bad.exit_code, 3);
    EXPECT_NE(bad.err.find("job.json: field 'critdim' is missing"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace critdim::scale
