// The scan: statistics equal a naive recomputation, do not depend on the thread count, shards
// merge to one pass, and a scan killed with SIGKILL resumes to the same result.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "critdim/analysis.hpp"
#include "critdim/gguf.hpp"
#include "critdim/model.hpp"
#include "critdim/tokenizer.hpp"
#include "analysis/stats_compare.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;

namespace critdim::analysis {
namespace {

std::string stories() { return test::shared_dir() + "/golden/models/stories260K-f32.gguf"; }

std::string tiny_model() {
    static const std::string path = [] {
        const std::string p = test::temp_dir("tiny") + "/tiny.gguf";
        model::SynthOptions o;
        o.config = model::synth_config("tiny");
        o.seed = 7;
        model::synthesize(o, p);
        return p;
    }();
    return path;
}

std::string small_corpus() {
    static const std::string path = [] {
        const std::string p = test::temp_dir("corpus") + "/docs.txt";
        std::ofstream f(p);
        f << "Once upon a time there was a cat.\nThe sum of 12 and 30 is 42.\nBirds sing.\n"
             "A very long line about the forest, the river, the mountains and the sky above them all.\n"
             "x\nThe cell membrane holds the cytoplasm.\n7 * 8 = 56\n";
        return p;
    }();
    return path;
}

TEST(ScanStats, EqualANaiveRecomputationDocumentByDocument) {
    const std::string out = test::temp_dir("scan") + "/s.stats";
    ScanOptions o;
    o.policy = PositionPolicy::all;
    o.points = {"resid_post", "embed"};
    o.n_threads = 2;
    o.n_batch = 24;
    scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, out);
    const Stats st = Stats::read(out);
    ASSERT_EQ(st.sites.size(), 3u);  // tiny: 2 layers, then embed
    EXPECT_EQ(st.sites[2], "embed");
    EXPECT_EQ(st.points, (std::vector<std::string>{"resid_post", "embed"}));
    EXPECT_TRUE(st.header.complete);
    EXPECT_EQ(st.header.n_docs, 7);
    EXPECT_EQ(st.header.model_hash, hash_file(tiny_model()));
    EXPECT_EQ(st.header.policy, "all");

    // One document at a time, every row kept, statistics computed plainly.
    const auto m = model::Model::load(tiny_model());
    const auto tok = tokenizer::Tokenizer::from_gguf(m->file());
    const int64_t E = m->hparams().n_embd;
    const size_t n = st.sites.size() * static_cast<size_t>(E);
    std::vector<double> sum(n), sq(n), ab(n), mx(n, -1.0);
    std::vector<int64_t> act_docs(n), act_tok(n), count(st.sites.size()), any(2 * static_cast<size_t>(E));
    const auto docs = read_corpus(CorpusSpec::parse(small_corpus()));
    for (size_t di = 0; di < docs.size(); ++di) {
        const auto ids = tok->encode(docs[di].text, true, false);
        model::Context ctx(*m, {.n_ctx = 64, .n_batch = 64, .n_seq = 1, .n_threads = 1});
        std::vector<uint8_t> doc_active(n, 0);
        for (size_t site = 0; site < st.sites.size(); ++site) {
            ctx.hooks().observe(model::HookSite::parse(st.sites[site]), [&, site](const model::ConstRows& rows) {
                for (int64_t r = 0; r < rows.n_rows; ++r) {
                    const float* x = rows.row(r);
                    double mean = 0, m2 = 0;
                    for (int64_t d = 0; d < E; ++d) mean += x[d];
                    mean /= static_cast<double>(E);
                    for (int64_t d = 0; d < E; ++d) m2 += (x[d] - mean) * (x[d] - mean);
                    const double sd = std::sqrt(m2 / static_cast<double>(E));
                    ++count[site];
                    for (int64_t d = 0; d < E; ++d) {
                        const size_t i = site * static_cast<size_t>(E) + static_cast<size_t>(d);
                        sum[i] += x[d], sq[i] += double(x[d]) * x[d], ab[i] += std::fabs(x[d]);
                        mx[i] = std::max(mx[i], double(std::fabs(x[d])));
                        if (std::fabs(x[d] - static_cast<float>(mean)) > static_cast<float>(3 * sd)) {
                            ++act_tok[i];
                            doc_active[i] = 1;
                        }
                    }
                }
            });
        }
        ctx.decode(ids, false);
        for (size_t i = 0; i < n; ++i) act_docs[i] += doc_active[i];
        for (int64_t d = 0; d < E; ++d) {
            any[static_cast<size_t>(d)] += doc_active[static_cast<size_t>(d)] | doc_active[static_cast<size_t>(E + d)];
            any[static_cast<size_t>(E + d)] += doc_active[static_cast<size_t>(2 * E + d)];
        }
    }
    EXPECT_EQ(st.count, count);
    EXPECT_EQ(st.s.active_docs, act_docs);
    EXPECT_EQ(st.s.active_tokens, act_tok);
    EXPECT_EQ(st.active_any, any);
    EXPECT_EQ(st.s.max_abs, mx);
    for (size_t i = 0; i < n; ++i) {
        EXPECT_NEAR(st.s.sum[i], sum[i], 1e-9 * (1 + ab[i]));
        EXPECT_NEAR(st.s.sum_sq[i], sq[i], 1e-9 * (1 + sq[i]));
        EXPECT_NEAR(st.s.sum_abs[i], ab[i], 1e-9 * (1 + ab[i]));
    }
}

TEST(ScanStats, LastPolicyCountsOneTokenPerDocumentAndThreadsDoNotMatter) {
    const std::string dir = test::temp_dir("threads");
    ScanOptions o;
    o.n_batch = 32;
    o.n_threads = 1;
    scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, dir + "/t1.stats");
    o.n_threads = 2;
    scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, dir + "/t2.stats");
    const Stats a = Stats::read(dir + "/t1.stats"), b = Stats::read(dir + "/t2.stats");
    EXPECT_EQ(a.count, std::vector<int64_t>(a.sites.size(), 7));
    EXPECT_EQ(a.header.policy, "last");
    test::expect_same_stats(a, b, /*exact_sums=*/true);
}

// Fuzz finding (fuzz_stats): a stats file claiming a huge n_embd made the reader size its
// arrays from the claim (std::length_error). Sizes are now checked against the tensor table.
TEST(ScanErrors, StatsFileClaimingMoreThanItHoldsIsRefusedBeforeAllocating) {
    const std::string dir = test::temp_dir("stats-claims");
    ScanOptions o;
    o.n_threads = 1;
    scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, dir + "/a.stats");
    const auto f = gguf::File::open(dir + "/a.stats");
    const auto rewritten = [&](const std::string& key, const gguf::Value& value) {
        gguf::Writer w;
        for (const auto& [k, v] : f->metadata()) w.set(k, k == key ? value : v);
        for (const auto& t : f->tensors()) w.add_tensor(t.name, t.type(), t.shape, t.data, t.n_bytes);
        const std::string path = dir + "/bad.stats";
        w.write(path);
        return path;
    };
    for (const uint64_t n_embd : {uint64_t{1} << 40, uint64_t{1} << 61, uint64_t{3}}) {
        const std::string path = rewritten("critdim.stats.model.n_embd", gguf::Value::u64(n_embd));
        try {
            Stats::read(path);
            ADD_FAILURE() << "n_embd " << n_embd << " was accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::input);
            EXPECT_NE(std::string(e.what()).find(path + ": tensor 'sum' has "), std::string::npos) << e.what();
        }
    }
}

TEST(ScanErrors, BadOptionsAreUsageErrorsAndCheckpointsMustMatch) {
    const std::string dir = test::temp_dir("scan-errors");
    auto r = test::run_critdim({"scan", tiny_model(), "--corpus", small_corpus(), "--out", dir + "/x.stats", "--policy", "first"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--policy: 'first' is not one of all, content, last"), std::string::npos) << r.err;
    r = test::run_critdim({"scan", tiny_model(), "--corpus", small_corpus(), "--out", dir + "/x.stats", "--shard", "2/2"});
    EXPECT_EQ(r.exit_code, 2);
    r = test::run_critdim({"scan", tiny_model(), "--corpus", small_corpus(), "--out", dir + "/x.stats", "--points", "resid_post.9"});
    EXPECT_EQ(r.exit_code, 2);
    r = test::run_critdim({"scan", tiny_model(), "--corpus", dir + "/none.txt", "--out", dir + "/x.stats"});
    EXPECT_EQ(r.exit_code, 5);
    EXPECT_NE(r.err.find("none.txt: no such file"), std::string::npos) << r.err;
    // A checkpoint written with other options is refused, not silently mixed in.
    Stats ck;
    ck.init({"resid_post.0"}, 64);
    ck.header.complete = false;
    ck.header.policy = "all";
    ck.write(dir + "/y.stats.ckpt");
    r = test::run_critdim({"scan", tiny_model(), "--corpus", small_corpus(), "--out", dir + "/y.stats"});
    EXPECT_EQ(r.exit_code, 4);
    EXPECT_NE(r.err.find("y.stats.ckpt: model.hash differs"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/y.stats"));
}

TEST(ScanShards, MergedShardsEqualOnePass) {
    const std::string dir = test::temp_dir("shards");
    const std::vector<std::string> base = {"scan", tiny_model(), "--corpus", small_corpus(), "--policy", "all",
                                           "--batch", "20", "-t", "1"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> a = base;
        a.insert(a.end(), extra.begin(), extra.end());
        const auto r = test::run_critdim(a);
        EXPECT_EQ(r.exit_code, 0) << r.err;
    };
    with({"--out", dir + "/all.stats"});
    for (int i = 0; i < 3; ++i) with({"--out", dir + "/s" + std::to_string(i) + ".stats", "--shard", std::to_string(i) + "/3"});
    const auto r = test::run_critdim({"merge", dir + "/s0.stats", dir + "/s1.stats", dir + "/s2.stats", "--out", dir + "/m.stats"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Stats one = Stats::read(dir + "/all.stats"), merged = Stats::read(dir + "/m.stats");
    EXPECT_EQ(merged.header.shards, (std::vector<std::string>{"0/3", "1/3", "2/3"}));
    EXPECT_EQ(merged.header.corpus_docs, 7);
    test::expect_same_stats(one, merged, /*exact_sums=*/false);

    // Files of another model do not merge.
    const auto bad = test::run_critdim({"scan", stories(), "--corpus", small_corpus(), "--out", dir + "/o.stats"});
    ASSERT_EQ(bad.exit_code, 0) << bad.err;
    const auto mm = test::run_critdim({"merge", dir + "/all.stats", dir + "/o.stats", "--out", dir + "/bad.stats"});
    EXPECT_EQ(mm.exit_code, 4);
    EXPECT_NE(mm.err.find("o.stats: model.hash differs"), std::string::npos) << mm.err;
}

// Runs the command in a child and kills it with SIGKILL as soon as its checkpoint exists.
bool run_and_kill_after_checkpoint(const std::vector<std::string>& args, const std::string& ckpt) {
    const pid_t pid = test::spawn_critdim(args, "/dev/null", "/dev/null");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!fs::exists(ckpt) && std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) return false;  // finished before a checkpoint
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST(ScanResume, KilledScanResumesToTheSameResult) {
    const std::string dir = test::temp_dir("resume");
    const std::string wiki = test::shared_dir() + "/data/wikitext/wiki.test.raw";
    // The reference run writes no checkpoints; the others one every 30 documents (of 115). One
    // thread: a pool on a machine busy with other work slows tiny batches down a lot.
    auto args = [&](const std::string& out, const std::string& every) {
        return std::vector<std::string>{"scan",     stories(), "--corpus", wiki,  "--shard", "0/25",
                                        "--ctx",    "48",      "--policy", "content", "--batch", "48",
                                        "--checkpoint-docs", every, "--checkpoint-seconds", "0",
                                        "-t",       "1",       "--out",    out};
    };
    const auto ref = test::run_critdim(args(dir + "/ref.stats", "0"));
    ASSERT_EQ(ref.exit_code, 0) << ref.err;

    const std::string out = dir + "/killed.stats";
    ASSERT_TRUE(run_and_kill_after_checkpoint(args(out, "30"), out + ".ckpt"));
    EXPECT_FALSE(fs::exists(out)) << "a killed scan must leave nothing under the output name";
    ASSERT_TRUE(fs::exists(out + ".ckpt"));
    const Stats ck = Stats::read(out + ".ckpt");
    EXPECT_FALSE(ck.header.complete);
    EXPECT_GT(ck.header.docs_done, 0);

    const auto again = test::run_critdim(args(out, "30"));
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.err.find("resuming"), std::string::npos) << again.err;
    EXPECT_FALSE(fs::exists(out + ".ckpt"));
    test::expect_same_stats(Stats::read(dir + "/ref.stats"), Stats::read(out), /*exact_sums=*/true);
}

}  // namespace
}  // namespace critdim::analysis

namespace critdim::analysis {
namespace {

// docs/read_stats.py reads a stats file with NumPy alone (docs/formats.md).
TEST(AnalysisPython, StatsFileIsReadableWithNumpy) {
    const std::string dir = test::temp_dir("python");
    const auto r = test::run_critdim({"scan", tiny_model(), "--corpus", small_corpus(), "--out", dir + "/p.stats"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string cmd = "/usr/bin/python3 -c 'import sys; sys.path.insert(0, \"" + test::source_dir() +
                            "/docs\"); from read_stats import read_stats; m, a = read_stats(\"" + dir +
                            "/p.stats\"); print(m[\"critdim.stats.n_docs\"], a[\"sum\"].shape, a[\"count\"].tolist(), "
                            "a[\"active_any\"].shape, m[\"critdim.stats.sites\"])' > " + dir + "/py.out 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream f(dir + "/py.out");
    std::string out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(out, "7 (2, 64) [7, 7] (1, 64) ['resid_post.0', 'resid_post.1']\n");
}

}  // namespace
}  // namespace critdim::analysis

namespace critdim::analysis {
namespace {

TEST(ScanStats, SigmaAxesRobustAndCorpusReference) {
    const std::string dir = test::temp_dir("sigma");
    ScanOptions o;
    o.policy = PositionPolicy::all;
    o.n_threads = 1;
    scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, dir + "/vector.stats");
    o.sigma_axis = SigmaAxis::vector_robust;
    scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, dir + "/robust.stats");
    o.sigma_axis = SigmaAxis::corpus;
    o.sigma_ref = dir + "/vector.stats";
    scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, dir + "/corpus.stats");
    const Stats v = Stats::read(dir + "/vector.stats"), r = Stats::read(dir + "/robust.stats"),
                c = Stats::read(dir + "/corpus.stats");
    EXPECT_EQ(r.header.sigma_axis, "vector-robust");
    EXPECT_EQ(c.header.sigma_ref_hash, hash_file(dir + "/vector.stats"));
    EXPECT_EQ(v.s.sum, c.s.sum);  // only the activity differs
    auto total = [](const Stats& s) {
        int64_t n = 0;
        for (int64_t a : s.s.active_tokens) n += a;
        return n;
    };
    EXPECT_GT(total(v), 0);
    EXPECT_GT(total(r), 0);
    EXPECT_GT(total(c), 0);
    EXPECT_NE(total(v), total(c));
    // Per-dimension z-scores over the same corpus: at most 1/9 of the tokens lie beyond 3 sigma
    // (Chebyshev), for every site and dimension.
    for (size_t i = 0; i < c.s.active_tokens.size(); ++i)
        EXPECT_LE(c.s.active_tokens[i] * 9, c.count[i / 64]) << i;
    o.sigma_ref.clear();
    EXPECT_THROW(scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, dir + "/x.stats"), Error);
}

TEST(ScanShards, MergingOtherCorporaShiftsDocumentIndices) {
    const std::string dir = test::temp_dir("corpora");
    ScanOptions o;
    o.policy = PositionPolicy::all;
    o.n_threads = 1;
    const std::string other = dir + "/other.txt";
    std::ofstream(other) << "Completely different words here.\nAnd here.\n";
    scan(tiny_model(), {CorpusSpec::parse(small_corpus())}, o, dir + "/a.stats");
    scan(tiny_model(), {CorpusSpec::parse(other)}, o, dir + "/b.stats");
    scan(tiny_model(), {CorpusSpec::parse(small_corpus()), CorpusSpec::parse(other)}, o, dir + "/ab.stats");
    Stats merged = Stats::read(dir + "/a.stats");
    merge_into(merged, Stats::read(dir + "/b.stats"), "b.stats");
    const Stats one = Stats::read(dir + "/ab.stats");
    EXPECT_EQ(merged.header.corpus_docs, 9);
    EXPECT_EQ(merged.header.corpus.size(), 2u);
    EXPECT_EQ(merged.s.max_doc, one.s.max_doc);
    EXPECT_EQ(merged.s.max_abs, one.s.max_abs);
    EXPECT_EQ(merged.s.active_docs, one.s.active_docs);
}

}  // namespace
}  // namespace critdim::analysis
