// critdim slurm without a cluster: the dry run, the array script run by bash as Slurm would run
// it (merged result equal to one process, for scan and reproduce), status read from files
// alone, and a merge that names the missing shards.
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

std::vector<std::string> slurm_reproduce(const std::string& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"slurm", "reproduce", "--nodes", "3"};
    a.insert(a.end(), extra.begin(), extra.end());
    for (const auto& s : test::reduced_reproduce_args()) a.push_back(s);
    a.insert(a.end(), {"--out", out});
    return a;
}

TEST(SlurmJob, ReproduceDryRunPrintsTheScriptsAndWritesNothing) {
    const std::string dir = test::temp_dir("slurm-rp-dry");
    const auto r = test::run_critdim(
        slurm_reproduce(dir + "/out", {"--dry-run", "--time", "2:00:00", "--mem", "2G", "--cpus-per-task", "2"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const std::string& line : std::vector<std::string>{
             "# ---- " + dir + "/out.slurm/array.sh", "#SBATCH --job-name=critdim-reproduce",
             "#SBATCH --output=" + dir + "/out.slurm/logs/task-%a.log", "#SBATCH --time=2:00:00", "#SBATCH --mem=2G",
             "#SBATCH --array=0,1,2", "export CRITDIM_SHARD_COUNT=3", "' reproduce '",
             "'--advbench-chunk' '2' '--max-tokens' '6'", "'-t' '1' --shard auto --out '" + dir + "/out' &",
             "# ---- " + dir + "/out.slurm/merge.sh (sbatch --dependency=afterok:ARRAY_JOB)",
             "#SBATCH --output=" + dir + "/out.slurm/logs/merge.log", "slurm merge '" + dir + "/out.slurm'"})
        EXPECT_NE(r.out.find(line), std::string::npos) << "missing: " << line << "\n" << r.out;
    // The merge generates too (the jailbreak evaluations at the chosen alphas): a task's CPUs.
    const std::string merge_sh = r.out.substr(r.out.find("merge.sh (sbatch"));
    EXPECT_NE(merge_sh.find("#SBATCH --cpus-per-task=2\n"), std::string::npos) << merge_sh;
    EXPECT_FALSE(fs::exists(dir + "/out.slurm")) << "a dry run writes nothing";
    EXPECT_FALSE(fs::exists(dir + "/out"));
    // The merge job's command: the job's arguments, its CPUs as threads unless they name -t.
    const Job job = make_reproduce_job("", {"m.gguf", "--data", "d", "--out", dir + "/o2"}, 3, {}, "/bin/critdim");
    EXPECT_EQ(reproduce_merge_command(job, "4"),
              (std::vector<std::string>{"/bin/critdim", "reproduce", "m.gguf", "--data", "d", "-t", "4", "--out",
                                        dir + "/o2", "--merge"}));
    const Job with_t = make_reproduce_job("", {"m.gguf", "-t", "1", "--out", dir + "/o3"}, 3, {}, "/bin/critdim");
    EXPECT_EQ(
        reproduce_merge_command(with_t, "4"),
        (std::vector<std::string>{"/bin/critdim", "reproduce", "m.gguf", "-t", "1", "--out", dir + "/o3", "--merge"}));

    auto bad = test::run_critdim(slurm_reproduce(dir + "/o", {"--dry-run", "--merge"}));
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("reproduce arguments: --merge is what the merge job runs"), std::string::npos) << bad.err;
    std::vector<std::string> sharded = slurm_reproduce(dir + "/o", {"--dry-run"});
    sharded.insert(sharded.end(), {"--shard", "1/3"});
    bad = test::run_critdim(sharded);
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("reproduce arguments: --shard is chosen per task by critdim slurm"), std::string::npos)
        << bad.err;
}

// The Proof without Slurm: the array script run by bash with the variables Slurm sets, one task
// after the other, then the merge job's command, equals one process's results.json (timing
// fields aside). A task killed before it finished resumes from its step files; until then the
// merge names it.
TEST(SlurmJob, ReproduceArrayScriptRunWithSlurmVariablesMergesToOneProcessRun) {
    const nlohmann::json& one = test::reduced_reproduce_reference();
    const std::string dir = test::temp_dir("slurm-rp-bash");
    std::vector<std::string> args = test::reduced_reproduce_args();
    args.insert(args.end(), {"--out", dir + "/out"});
    const Job job = make_reproduce_job("", args, 3, {}, test::critdim_binary());
    prepare(job, {0, 1, 2});
    EXPECT_EQ(Job::load(job.dir).kind, "reproduce");
    auto run_task = [&](int i) {
        std::string out;
        EXPECT_EQ(test::shell("SLURM_ARRAY_JOB_ID=77 SLURM_ARRAY_TASK_ID=" + std::to_string(i) + " bash '" + job.dir +
                                  "/array.sh' 2>&1",
                              &out),
                  0)
            << out;
        return out;
    };
    for (int i = 0; i < 3; ++i) run_task(i);
    const JobStatus before = job_status(job);
    EXPECT_EQ(before.count(TaskState::done), 3);
    EXPECT_FALSE(before.merged);
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(fs::exists(dir + "/out/shards/shard-" + std::to_string(i) + "-of-3/shard.json"));
    EXPECT_FALSE(fs::exists(dir + "/out/steps")) << "shards write only into their own folders";

    // Task 1 "killed": its finish mark and one step file gone, as if it stopped mid-run.
    const std::string shard1 = dir + "/out/shards/shard-1-of-3";
    const nlohmann::json mark = nlohmann::json::parse(read_text_file(shard1 + "/shard.json"));
    ASSERT_FALSE(mark["steps"].empty());
    fs::remove(shard1 + "/shard.json");
    fs::remove(shard1 + "/steps/" + mark["steps"][0].get<std::string>() + ".json");
    EXPECT_EQ(job_status(job).tasks[1].state, TaskState::running);
    EXPECT_EQ(job_status(job).tasks[1].steps_done, static_cast<int64_t>(mark["steps"].size()) - 1);
    const auto status = test::run_critdim({"slurm", "status", job.dir});
    EXPECT_NE(status.out.find("3 tasks: 2 done, 1 running, 0 failed, 0 pending; not merged"), std::string::npos)
        << status.out;
    EXPECT_NE(
        status.out.find("task 1: running (job 77_1), " + std::to_string(mark["steps"].size() - 1) + " steps so far"),
        std::string::npos)
        << status.out;
    const auto refused = test::run_critdim({"slurm", "merge", job.dir});
    EXPECT_EQ(refused.exit_code, 3);
    EXPECT_NE(
        refused.err.find(job.dir + ": cannot merge: missing shards shards/shard-1-of-3 (task 1 running: job 77_1)"),
        std::string::npos)
        << refused.err;
    // reproduce --merge by hand names it too.
    std::vector<std::string> by_hand = {"reproduce"};
    by_hand.insert(by_hand.end(), args.begin(), args.end());
    by_hand.push_back("--merge");
    const auto refused_by_hand = test::run_critdim(by_hand);
    EXPECT_EQ(refused_by_hand.exit_code, 3);
    EXPECT_NE(refused_by_hand.err.find("cannot merge: missing shards shard-1-of-3 (unfinished: no shard.json) (of 3)"),
              std::string::npos)
        << refused_by_hand.err;
    const std::string rerun = run_task(1);
    EXPECT_NE(rerun.find("1 steps run, " + std::to_string(mark["steps"].size() - 1) + " skipped"), std::string::npos)
        << rerun;
    EXPECT_EQ(nlohmann::json::parse(read_text_file(shard1 + "/shard.json")), mark);

    const auto m = test::run_critdim({"slurm", "merge", job.dir});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    EXPECT_TRUE(job_status(job).merged) << test::run_critdim({"slurm", "status", job.dir, "--json"}).out;
    const nlohmann::json merged = nlohmann::json::parse(read_text_file(dir + "/out/results.json"));
    test::expect_same_results(one, merged);
    // The merge computed only the two methods' evaluations at their chosen alphas (3 chunks of
    // harmful and 3 of harmless prompts each); every other step came from a shard.
    EXPECT_NE(merged["jailbreak"]["whole"]["alpha"], 0.0);
    EXPECT_NE(merged["jailbreak"]["cds"]["alpha"], 0.0);
    EXPECT_EQ(merged["steps"]["run"], 12);
    EXPECT_EQ(merged["steps"]["skipped"].get<int>() + 12, one["steps"]["run"].get<int>());
}

TEST(SlurmJob, ReproduceShardAndMergeErrors) {
    const std::string dir = test::temp_dir("rp-shard-errors");
    auto reproduce = [&](std::vector<std::string> extra) {
        std::vector<std::string> a = {"reproduce"};
        for (const auto& s : test::reduced_reproduce_args()) a.push_back(s);
        a.insert(a.end(), {"--out", dir + "/out"});
        a.insert(a.end(), extra.begin(), extra.end());
        return test::run_critdim(a);
    };
    auto r = reproduce({"--shard", "3/3"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--shard: '3/3' needs 0 <= I < N"), std::string::npos) << r.err;
    r = reproduce({"--shard", "auto"});  // not inside an array job
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--shard auto: not inside a Slurm array job"), std::string::npos) << r.err;
    r = reproduce({"--shard", "0/2", "--merge"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--shard and --merge: a shard cannot merge"), std::string::npos) << r.err;
    r = reproduce({"--merge"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find(dir + "/out/shards: --merge: no shard folders (shard-I-of-N) to merge"), std::string::npos)
        << r.err;
    // A finished shard computed with other settings: a mismatch naming the setting.
    fs::create_directories(dir + "/out/shards/shard-0-of-1");
    nlohmann::json mark = {{"format", "critdim-reproduce-shard"}, {"version", 1}, {"shard", 0}, {"n_shards", 1}};
    mark["options"] = {{"ablate_top", 5}};
    std::ofstream(dir + "/out/shards/shard-0-of-1/shard.json") << mark.dump();
    r = reproduce({"--merge"});
    EXPECT_EQ(r.exit_code, 4);
    EXPECT_NE(r.err.find("shard-0-of-1/shard.json: options.ablate_top is 5, this merge runs with 1"), std::string::npos)
        << r.err;
    fs::create_directories(dir + "/out/shards/shard-1-of-2");
    r = reproduce({"--merge"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("--merge: shards of different counts N (1, 2); remove the stale ones"), std::string::npos)
        << r.err;
}

}  // namespace
}  // namespace critdim::scale
