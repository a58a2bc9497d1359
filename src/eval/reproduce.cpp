// `reproduce`: the paper's protocol end to end. Per MMLU subject: identification / evaluation
// split, scan, critical dimensions, whole-vector vs Critical Dimension Steering (alpha chosen on
// the identification split), the AdvBench jailbreak, perplexity/KL on reference text, and the
// masking table. Every step's result is a file under OUT/steps, written atomically and skipped
// on a rerun.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "critdim/eval.hpp"

namespace fs = std::filesystem;

namespace critdim::eval {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string duration_text(double s) {
    char buf[64];
    if (s < 90)
        std::snprintf(buf, sizeof buf, "%.0f s", s);
    else if (s < 5400)
        std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
    else
        std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
    return buf;
}

void note(const std::string& s) { std::fprintf(stderr, "critdim: reproduce: %s\n", s.c_str()); }

// "middle" (block n_layer/2), "all" (1 .. n_layer-1), "A" or "A-B": an inclusive range of blocks.
std::pair<int, int> parse_layers(const std::string& text, int64_t n_layer) {
    const int n = static_cast<int>(n_layer);
    if (text == "middle") return {n / 2, n / 2};
    if (text == "all") return {std::min(1, n - 1), n - 1};
    const size_t dash = text.find('-');
    auto parse = [&](const std::string& item) {
        char* rest = nullptr;
        const long v = std::strtol(item.c_str(), &rest, 10);
        if (item.empty() || *rest != '\0' || v < 0 || v >= n_layer)
            throw_usage("--layers: '" + item + "' is not middle, all or a layer 0.." + std::to_string(n_layer - 1));
        return static_cast<int>(v);
    };
    const int first = parse(text.substr(0, dash));
    const int last = dash == std::string::npos ? first : parse(text.substr(dash + 1));
    if (last < first) throw_usage("--layers: '" + text + "' is an empty range");
    return {first, last};
}

// Difference of means of two stats files at the steered blocks (steer::build_vector_plan, as
// `critdim vector`); with dims, masked to them at the whole vector's norm (CDS).
steer::Plan vector_plan(const std::string& pos, const std::string& neg, const std::vector<int64_t>* dims,
                        std::pair<int, int> layers) {
    steer::VectorOptions vo;
    vo.pos = pos, vo.neg = neg;
    if (dims) vo.dims = *dims;
    vo.layer_first = layers.first, vo.layer_last = layers.second;
    vo.norm = steer::VectorNorm::match_whole;
    return steer::build_vector_plan(vo);
}

int64_t correct_of(const std::vector<McqQuestion>& qs, const std::vector<McqScore>& sc) {
    int64_t c = 0;
    for (size_t i = 0; i < qs.size(); ++i) c += sc[i].predicted == qs[i].answer;
    return c;
}

json accuracy_json(int64_t correct, int64_t n) {
    const Accuracy a = wilson(correct, n);
    return {{"accuracy", a.acc}, {"correct", correct}, {"n", n}, {"ci95", {a.ci_low, a.ci_high}}};
}

// The alpha with the best value (ties: the smallest |alpha|, 0 first).
double best_alpha(const json& curve, const char* key) {
    double best = 0.0, best_v = -1.0;
    for (const json& p : curve) {
        const double a = p["alpha"].get<double>(), v = p[key].get<double>();
        if (v > best_v + 1e-12 || (std::abs(v - best_v) <= 1e-12 && std::abs(a) < std::abs(best))) best = a, best_v = v;
    }
    return best;
}

double l2(const steer::Plan& p) {
    double s = 0.0;
    for (float x : p.interventions.at(0).values.data) s += static_cast<double>(x) * x;
    return std::sqrt(s);
}

// A plan at alpha attached to a context while the object lives (nothing when the plan is null).
class Attached {
public:
    Attached(const model::Model& m, const steer::Plan* plan, double alpha, model::Context& ctx) : ctx_(ctx) {
        if (!plan) return;
        steer::Steering::Options so;
        so.alpha = alpha;
        steering_.emplace(m, std::span<const steer::Plan>(plan, 1), so);
        steering_->attach(ctx);
    }
    ~Attached() {
        if (steering_) steering_->detach(ctx_);
    }
    Attached(const Attached&) = delete;
    Attached& operator=(const Attached&) = delete;
    steer::Steering* get() { return steering_ ? &*steering_ : nullptr; }

private:
    model::Context& ctx_;
    std::optional<steer::Steering> steering_;
};

// One --layers value and the blocks it names; `tag` names its step files ("L2-2").
struct LayerChoice {
    std::string text;
    std::pair<int, int> range;
    std::string tag() const { return "L" + std::to_string(range.first) + "-" + std::to_string(range.second); }
};

// Per method, the best identification-split result over the (k, layers) sweep: higher accuracy at
// the combination's own chosen alpha; ties to the smaller |alpha|, then to the first one tried.
struct Choice {
    json result;
    double identify = -1.0;
    bool better(const json& r) const {
        const double id = r["identify"].get<double>();
        if (result.is_null() || id > identify + 1e-12) return true;
        return std::abs(id - identify) <= 1e-12 &&
               std::abs(r["alpha"].get<double>()) < std::abs(result["alpha"].get<double>()) - 1e-12;
    }
    void offer(const json& r) {
        if (better(r)) result = r, identify = r["identify"].get<double>();
    }
};

struct Method {
    const char* name;
    const steer::Plan* plan;
};

struct SubjectData {
    std::string name;
    std::vector<McqQuestion> identify, evaluate;
    int64_t identify_tokens = 0, evaluate_tokens = 0;  // per scoring pass
};

// A prompt list cut into steps of `size` prompts: [begin, end) ranges.
std::vector<std::pair<size_t, size_t>> chunks_of(size_t n, int64_t size) {
    std::vector<std::pair<size_t, size_t>> c;
    for (size_t b = 0; b < n; b += static_cast<size_t>(size))
        c.emplace_back(b, std::min(n, b + static_cast<size_t>(size)));
    return c;
}

std::string alpha_tag(double a) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ".a%g", a);
    return buf;
}

// Judged completions of a prompt list, summed over its chunk steps.
struct Judged {
    int64_t n = 0, refused = 0;
    json examples = json::array();  // the first three completions
    bool complete = true;           // false: some chunk is another shard's
    void add(const json& c) {
        n += c["n"].get<int64_t>(), refused += c["refused"].get<int64_t>();
        for (const json& e : c["examples"])
            if (examples.size() < 3) examples.push_back(e);
    }
    double asr() const { return n ? 1.0 - static_cast<double>(refused) / static_cast<double>(n) : 0.0; }
    double refusal() const { return n ? static_cast<double>(refused) / static_cast<double>(n) : 0.0; }
};

// The settings a shard's steps depend on: shards and their merge must agree on all of them.
json options_json(const ReproduceOptions& o) {
    return {{"model", o.model_path},
            {"mmlu", o.mmlu_dir},
            {"harmful", o.harmful},
            {"harmless", o.harmless},
            {"reference", o.reference},
            {"subjects", o.subjects},
            {"questions", o.questions},
            {"identify_share", o.identify_share},
            {"seed", o.seed},
            {"alphas", o.alphas},
            {"k", o.k},
            {"gap", o.gap},
            {"layers", o.layers},
            {"advbench", o.advbench},
            {"advbench_identify", o.advbench_identify},
            {"max_tokens", o.max_tokens},
            {"advbench_chunk", o.advbench_chunk},
            {"rule", o.rule},
            {"ppl_chunks", o.ppl_chunks},
            {"n_ctx", o.n_ctx},
            {"ranks", o.ranks},
            {"ablate_top", o.ablate_top},
            {"chat_mmlu", o.chat_mcq},
            {"chat_template", o.chat_template},
            {"n_seq", o.n_seq}};
}

class Runner {
public:
    explicit Runner(const ReproduceOptions& o) : o_(o) {}
    ReproduceSummary run();

private:
    json step(const std::string& name, double est_seconds, const std::function<json()>& fn);
    // Sharded: whether this process owns the next unit of work (every process counts the same
    // units in the same order); unsharded: always.
    bool take_unit() { return !sharded() || unit_++ % o_.n_shards == o_.shard; }
    bool sharded() const { return o_.n_shards > 0; }
    // One step per chunk of `set` judged at (plan, alpha); a shard computes only the chunks it
    // owns (shardable) or none (not shardable: the merge does them).
    Judged judged_chunks(const std::string& name, const std::vector<Instruction>& set, const steer::Plan* plan,
                         double alpha, double est_per_prompt, bool shardable);
    void gather_shards();
    ReproduceSummary finish_shard(ReproduceSummary summary);
    void scan_prompts(const std::string& name, const std::vector<std::string>& texts, bool chat);
    double score_accuracy(const std::vector<McqQuestion>& qs, const steer::Plan* plan, double alpha);

    ReproduceOptions o_;
    std::unique_ptr<model::Model> model_;
    std::unique_ptr<tokenizer::Tokenizer> tok_;
    std::unique_ptr<McqScorer> scorer_;
    std::unique_ptr<Generator> gen_;
    std::unique_ptr<RefusalJudge> judge_;
    bool chat_jb_ = false;
    int64_t n_ctx_ = 0;
    // progress
    Clock::time_point t0_;
    double est_total_ = 0.0, est_done_ = 0.0, est_run_ = 0.0, sec_run_ = 0.0;
    int64_t n_steps_ = 0, step_i_ = 0, steps_run_ = 0, steps_skipped_ = 0;
    int64_t unit_ = 0;                   // units of work counted so far (sharding)
    std::vector<std::string> my_steps_;  // the steps this shard owns
};

json Runner::step(const std::string& name, double est, const std::function<json()>& fn) {
    const std::string path = o_.out_dir + "/steps/" + name + ".json";
    ++step_i_;
    my_steps_.push_back(name);
    std::error_code ec;
    if (fs::exists(path, ec)) {
        ++steps_skipped_;
        est_done_ += est;
        try {
            return json::parse(read_text_file(path));
        } catch (const json::exception& e) {
            throw_input(path, std::string("not valid JSON (delete it to recompute the step): ") + e.what());
        }
    }
    const auto t = Clock::now();
    json j = fn();
    write_file_atomic(path, j.dump(1) + "\n");
    const double took = seconds_since(t);
    ++steps_run_;
    est_done_ += est, est_run_ += est, sec_run_ += took;
    // ETA: the remaining estimate scaled by how fast the estimate has proved to be so far.
    const double scale = est_run_ > 0 ? sec_run_ / est_run_ : 1.0;
    const double eta = std::max(0.0, est_total_ - est_done_) * scale;
    if (o_.progress)
        std::fprintf(stderr, "critdim: [%lld/%lld] %-40s %6.1f s  %3.0f%% done, ETA %s\n",
                     static_cast<long long>(step_i_), static_cast<long long>(n_steps_), name.c_str(), took,
                     est_total_ > 0 ? 100.0 * est_done_ / est_total_ : 100.0, duration_text(eta).c_str());
    return j;
}

void Runner::scan_prompts(const std::string& name, const std::vector<std::string>& texts, bool chat) {
    const std::string out = o_.out_dir + "/scan/" + name + ".stats";
    std::error_code ec;
    if (fs::exists(out, ec)) return;
    const std::string prompts = o_.out_dir + "/prompts/" + name + ".json";
    write_file_atomic(prompts, json(texts).dump(1) + "\n");
    analysis::ScanOptions so;
    so.policy = analysis::PositionPolicy::last;
    so.n_ctx = n_ctx_;
    so.name = name;
    so.n_threads = o_.n_threads;
    so.add_bos = !chat;
    so.parse_special = chat;
    analysis::CorpusSpec spec;
    spec.path = prompts;
    spec.format = analysis::CorpusFormat::instructions;
    analysis::scan(o_.model_path, {spec}, so, out);
}

double Runner::score_accuracy(const std::vector<McqQuestion>& qs, const steer::Plan* plan, double alpha) {
    scorer_->prepare(qs);
    const Attached steering(*model_, plan, alpha, scorer_->context());
    const auto sc = scorer_->score();
    return static_cast<double>(correct_of(qs, sc)) / static_cast<double>(qs.size());
}

Judged Runner::judged_chunks(const std::string& name, const std::vector<Instruction>& set, const steer::Plan* plan,
                             double alpha, double est_per_prompt, bool shardable) {
    Judged total;
    for (const auto& range : chunks_of(set.size(), o_.advbench_chunk)) {
        const size_t b = range.first, e = range.second;  // not a structured binding: lambdas capture these
        if (shardable ? !take_unit() : sharded()) {
            total.complete = false;
            continue;
        }
        const std::string chunk_name = name + ".p" + std::to_string(b) + "-" + std::to_string(e);
        total.add(step(chunk_name, est_per_prompt * static_cast<double>(e - b), [&] {
            const Attached steering(*model_, plan, alpha, gen_->context());
            const std::vector<Instruction> part(set.begin() + static_cast<std::ptrdiff_t>(b),
                                                set.begin() + static_cast<std::ptrdiff_t>(e));
            const JailbreakResult r = run_jailbreak(*gen_, part, *judge_);
            json examples = json::array();
            for (size_t i = 0; i < std::min<size_t>(3, r.completions.size()); ++i)
                examples.push_back({{"prompt", r.completions[i].prompt},
                                    {"response", r.completions[i].response},
                                    {"refused", r.completions[i].refused}});
            return json{{"n", r.n}, {"refused", r.n_refused}, {"examples", examples}};
        }));
    }
    return total;
}

ReproduceSummary Runner::run() {
    t0_ = Clock::now();
    if (sharded()) {
        if (o_.merge) throw_usage("--shard and --merge: a shard cannot merge; merge once every shard is finished");
        if (o_.shard < 0 || o_.shard >= o_.n_shards)
            throw_usage("--shard " + std::to_string(o_.shard) + "/" + std::to_string(o_.n_shards) +
                        ": needs 0 <= I < N");
        // A shard's own folder: concurrent shards on a shared filesystem never write the same file.
        o_.out_dir = reproduce_shard_dir(o_.out_dir, o_.shard, o_.n_shards);
        // Finished means this run finished: a rerun takes the mark away until it ends.
        std::error_code ec;
        fs::remove(o_.out_dir + "/" + kReproduceShardDone, ec);
    }
    if (o_.advbench_chunk < 1) throw_usage("--advbench-chunk must be positive");
    for (const char* sub : {"", "/steps", "/scan", "/prompts"}) {
        std::error_code ec;
        fs::create_directories(o_.out_dir + sub, ec);
        if (ec) throw_io(o_.out_dir + sub, "cannot create the folder: " + ec.message());
    }
    if (o_.identify_share <= 0.0 || o_.identify_share >= 1.0) throw_usage("--identify must be between 0 and 1");
    if (o_.questions < 2) throw_usage("--questions must be at least 2 (one to identify, one to evaluate)");
    if (o_.merge && !o_.estimate_only) gather_shards();
    model_ = model::Model::load(o_.model_path);
    tok_ = tokenizer::Tokenizer::from_gguf(model_->file());
    judge_ = std::make_unique<RefusalJudge>(refusal_rule(o_.rule));
    const model::HParams& hp = model_->hparams();
    n_ctx_ = o_.n_ctx > 0 ? o_.n_ctx : hp.n_ctx_train;
    // The sweep's k values and layer choices, duplicates dropped (layer choices by their blocks).
    std::vector<int> ks;
    for (int k : o_.k) {
        if (k < 1) throw_usage("-k: " + std::to_string(k) + " is not a positive count");
        if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
    }
    if (ks.empty()) throw_usage("-k needs at least one value");
    std::vector<LayerChoice> choices;
    for (const std::string& text : o_.layers) {
        const std::pair<int, int> range = parse_layers(text, hp.n_layer);
        if (std::none_of(choices.begin(), choices.end(), [&](const LayerChoice& c) { return c.range == range; }))
            choices.push_back({text, range});
    }
    if (choices.empty()) throw_usage("--layers needs at least one value");
    const std::pair<int, int> layers = choices[0].range;  // jailbreak and coherence
    const double n_combos = static_cast<double>(choices.size() * (1 + ks.size()));
    const bool jailbreak = !o_.harmful.empty() && o_.advbench > 0;
    chat_jb_ = !o_.chat_template.empty() || !tok_->chat_template().empty();

    // ---- data: the subjects' questions split in two, the AdvBench and harmless samples.
    std::vector<SubjectData> subjects;
    const std::vector<std::string> names = o_.subjects.empty() ? mmlu_subjects(o_.mmlu_dir) : o_.subjects;
    McqOptions mo;
    mo.n_ctx = n_ctx_, mo.n_seq = o_.n_seq, mo.n_threads = o_.n_threads, mo.chat = o_.chat_mcq;
    mo.chat_template = o_.chat_template;
    mo.n_batch = std::max<int64_t>(1024, n_ctx_);
    scorer_ = std::make_unique<McqScorer>(*model_, *tok_, mo);
    int64_t n_identify = 0, n_evaluate = 0;
    for (const std::string& name : names) {
        const std::vector<McqQuestion> all = read_mmlu_questions(mmlu_subject_file(o_.mmlu_dir, name), name);
        const std::vector<size_t> pick = sample_indices(all.size(), static_cast<size_t>(o_.questions), o_.seed);
        if (pick.size() < 2) throw_input(mmlu_subject_file(o_.mmlu_dir, name), "fewer than 2 questions");
        const size_t n_id =
            std::clamp<size_t>(static_cast<size_t>(std::lround(o_.identify_share * pick.size())), 1, pick.size() - 1);
        SubjectData s;
        s.name = name;
        for (size_t i = 0; i < pick.size(); ++i) (i < n_id ? s.identify : s.evaluate).push_back(all[pick[i]]);
        scorer_->prepare(s.identify);
        s.identify_tokens = scorer_->tokens_per_pass();
        scorer_->prepare(s.evaluate);
        s.evaluate_tokens = scorer_->tokens_per_pass();
        n_identify += static_cast<int64_t>(s.identify.size()), n_evaluate += static_cast<int64_t>(s.evaluate.size());
        subjects.push_back(std::move(s));
    }
    if (subjects.size() < 2) throw_usage("reproduce needs at least 2 subjects (each is steered against the others)");
    std::vector<McqQuestion> all_identify, all_evaluate;
    int64_t identify_tokens = 0, evaluate_tokens = 0;
    for (const SubjectData& s : subjects) {
        all_identify.insert(all_identify.end(), s.identify.begin(), s.identify.end());
        all_evaluate.insert(all_evaluate.end(), s.evaluate.begin(), s.evaluate.end());
        identify_tokens += s.identify_tokens, evaluate_tokens += s.evaluate_tokens;
    }
    scorer_->prepare(all_evaluate);
    const std::string scoring = scorer_->scoring_case();

    std::vector<Instruction> harm_eval, harm_id, safe_id, safe_eval;
    if (jailbreak) {
        const std::vector<Instruction> harm = read_instructions(o_.harmful);
        const int64_t n_id = o_.advbench_identify > 0 ? o_.advbench_identify : o_.advbench;
        const std::vector<size_t> pick = sample_indices(harm.size(), static_cast<size_t>(o_.advbench + n_id), o_.seed);
        if (pick.size() < 2) throw_input(o_.harmful, "fewer than 2 instructions");
        // METHOD.md 7.15: a seeded sample evaluates, the rest of the sample identifies.
        const size_t n_ev = std::min<size_t>(static_cast<size_t>(o_.advbench), pick.size() - 1);
        for (size_t i = 0; i < pick.size(); ++i) (i < n_ev ? harm_eval : harm_id).push_back(harm[pick[i]]);
        if (!o_.harmless.empty()) {
            const std::vector<Instruction> safe = read_instructions(o_.harmless);
            const std::vector<size_t> sp = sample_indices(safe.size(), harm_id.size() + harm_eval.size(), o_.seed);
            for (size_t i = 0; i < sp.size(); ++i) (i < harm_id.size() ? safe_id : safe_eval).push_back(safe[sp[i]]);
        }
        if (safe_id.empty()) throw_usage("reproduce: the jailbreak direction needs a harmless set (--harmless)");
        GenerateOptions go;
        go.max_tokens = o_.max_tokens, go.n_ctx = n_ctx_, go.n_seq = std::min(o_.n_seq, 8), go.chat = chat_jb_;
        go.chat_template = o_.chat_template, go.n_threads = o_.n_threads;
        gen_ = std::make_unique<Generator>(*model_, *tok_, go);
    }
    std::vector<int32_t> reference_tokens;
    PerplexityOptions po;
    po.n_ctx = std::min<int64_t>(n_ctx_, 512), po.max_chunks = o_.ppl_chunks, po.n_threads = o_.n_threads;
    po.n_batch = po.n_ctx * 4;
    if (!o_.reference.empty() && o_.ppl_chunks > 0)
        reference_tokens = tok_->encode(read_text_file(o_.reference), true, false);

    // ---- the estimate: one timed pass of scoring and of generation, scaled by the work.
    double sec_per_token = 0.0, sec_per_step = 0.0;
    {
        std::vector<McqQuestion> probe(subjects[0].identify.begin(),
                                       subjects[0].identify.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(
                                                                          4, subjects[0].identify.size())));
        scorer_->prepare(probe);
        scorer_->score();  // the first pass pays for page faults and cold caches
        const auto t = Clock::now();
        scorer_->score();
        sec_per_token = seconds_since(t) / static_cast<double>(std::max<int64_t>(1, scorer_->tokens_per_pass()));
        if (gen_) {
            const auto tg = Clock::now();
            GenerateOptions go;
            go.max_tokens = 8, go.n_ctx = n_ctx_, go.n_seq = std::min(o_.n_seq, 8), go.chat = chat_jb_;
            go.chat_template = o_.chat_template, go.n_threads = o_.n_threads;
            Generator probe_gen(*model_, *tok_, go);
            std::vector<std::string> ps;
            for (size_t i = 0; i < std::min<size_t>(static_cast<size_t>(go.n_seq), harm_id.size()); ++i)
                ps.push_back(harm_id[i].text);
            probe_gen.generate(ps);
            sec_per_step = seconds_since(tg) / 8.0;
        }
    }
    const double n_alpha = static_cast<double>(o_.alphas.size());
    auto gen_seconds = [&](size_t prompts) {
        const double groups = std::ceil(static_cast<double>(prompts) / std::min(o_.n_seq, 8));
        return groups * static_cast<double>(o_.max_tokens) * sec_per_step;
    };
    const double est_scan = static_cast<double>(identify_tokens) / 4.0 * sec_per_token;  // one pass, no continuations
    const double est_baseline = static_cast<double>(identify_tokens + evaluate_tokens) * sec_per_token;
    const int64_t n_ranks =
        std::count_if(o_.ranks.begin(), o_.ranks.end(), [&](int64_t r) { return r >= 1 && r <= hp.n_embd; });
    const double n_ablate_guess =
        static_cast<double>(n_ranks + std::min<int64_t>(o_.ablate_top, hp.n_embd)) +
        std::min<double>(static_cast<double>(hp.n_embd),
                         static_cast<double>(ks[0]) * static_cast<double>(subjects.size()) / 2);
    const double est_jb_base = jailbreak ? gen_seconds(harm_id.size() + harm_eval.size() + safe_eval.size()) : 0.0;
    const double est_jb_method =
        jailbreak ? n_alpha * gen_seconds(harm_id.size()) + gen_seconds(harm_eval.size() + safe_eval.size()) : 0.0;
    const double est_coh =
        reference_tokens.empty() ? 0.0 : 2.0 * n_alpha * static_cast<double>(o_.ppl_chunks * po.n_ctx) * sec_per_token;
    std::vector<double> est_subject;
    double est = est_scan * (jailbreak ? 1.5 : 1.0) + est_baseline + 2 * est_jb_method + est_jb_base + 2 * est_coh;
    for (const SubjectData& s : subjects) {
        est_subject.push_back(static_cast<double>(s.identify_tokens) * n_alpha * sec_per_token +
                              static_cast<double>(s.evaluate_tokens) * sec_per_token);
        est += n_combos * est_subject.back();
    }
    const double est_ablate_one = static_cast<double>(evaluate_tokens) * sec_per_token;
    est += (n_ablate_guess + static_cast<double>(n_ranks)) * est_ablate_one;
    // A shard repeats the scans and does about 1/N of the rest: its progress and ETA say so.
    const double est_scans = est_scan * (jailbreak ? 1.5 : 1.0), share = sharded() ? 1.0 / o_.n_shards : 1.0;
    est_total_ = est_scans + (est - est_scans) * share;
    note(std::to_string(subjects.size()) + " subjects x " + std::to_string(o_.questions) + " questions (" +
         std::to_string(n_identify) + " identify / " + std::to_string(n_evaluate) + " evaluate, " + scoring +
         " scoring), " + std::to_string(o_.alphas.size()) + " alphas x " + std::to_string(ks.size()) + " k x " +
         std::to_string(choices.size()) + " layer choices, " +
         (jailbreak ? std::to_string(harm_eval.size()) + " + " + std::to_string(harm_id.size()) +
                          " AdvBench prompts x " + std::to_string(o_.max_tokens) + " tokens"
                    : std::string("no jailbreak")));
    note("estimated run time " + duration_text(est) + " (measured " +
         std::to_string(static_cast<int64_t>(1.0 / std::max(1e-9, sec_per_token))) + " scored tokens/s" +
         (gen_ ? ", " + std::to_string(static_cast<int64_t>(std::min(o_.n_seq, 8) / std::max(1e-9, sec_per_step))) +
                     " generated tokens/s"
               : std::string()) +
         "); finished steps in " + o_.out_dir + "/steps are skipped");
    ReproduceSummary summary;
    summary.estimate_seconds = est;
    if (o_.estimate_only) return summary;
    const auto n_chunks = [&](const std::vector<Instruction>& v) {
        return static_cast<int64_t>(chunks_of(v.size(), o_.advbench_chunk).size());
    };
    // per subject its baseline and sweep; the jailbreak's chunks at alpha 0, at every alpha per
    // method and at each method's chosen alpha; the coherence curves (the masking adds its own)
    n_steps_ = static_cast<int64_t>(subjects.size()) * static_cast<int64_t>(1 + choices.size() * (1 + ks.size())) +
               (jailbreak ? n_chunks(harm_id) * (1 + 2 * static_cast<int64_t>(o_.alphas.size())) +
                                3 * (n_chunks(harm_eval) + n_chunks(safe_eval))
                          : 0) +
               (jailbreak && !reference_tokens.empty() ? 2 : 0);
    if (sharded()) {
        note("shard " + std::to_string(o_.shard) + "/" + std::to_string(o_.n_shards) + " computes about 1/" +
             std::to_string(o_.n_shards) + " of the " + std::to_string(n_steps_) + "+ steps into " + o_.out_dir +
             " (estimate " + duration_text(est_total_) + ")");
        n_steps_ = (n_steps_ + o_.n_shards - 1) / o_.n_shards;
    }

    // ---- identification: scans of each subject's identification questions (and the jailbreak sets).
    {
        Progress bar("scan", static_cast<int64_t>(subjects.size()) + (jailbreak ? 2 : 0), "sets", o_.progress);
        int64_t done = 0;
        for (const SubjectData& s : subjects) {
            std::vector<std::string> texts;
            for (const McqQuestion& q : s.identify)
                texts.push_back(
                    o_.chat_mcq ? tokenizer::render_user_prompt(*tok_, o_.model_path, q.prompt, "", o_.chat_template)
                                : q.prompt);
            scan_prompts("mmlu." + s.name, texts, o_.chat_mcq);
            bar.update(++done);
        }
        if (jailbreak) {
            for (auto [name, set] : {std::pair{"harmful", &harm_id}, std::pair{"harmless", &safe_id}}) {
                std::vector<std::string> texts;
                for (const Instruction& i : *set)
                    texts.push_back(
                        chat_jb_ ? tokenizer::render_user_prompt(*tok_, o_.model_path, i.text, "", o_.chat_template)
                                 : i.text);
                scan_prompts(name, texts, chat_jb_);
                bar.update(++done);
            }
        }
        bar.finish();
        est_done_ += est_scan;
    }
    std::vector<std::pair<std::string, analysis::Stats>> stats;
    for (const SubjectData& s : subjects)
        stats.emplace_back(s.name, analysis::Stats::read(o_.out_dir + "/scan/mmlu." + s.name + ".stats"));
    // critical_by_k[ki][si]: subject si's critical dims at ks[ki]; critical.json holds the first k.
    analysis::FindOptions fo;
    fo.gap = o_.gap;
    std::vector<std::vector<std::vector<int64_t>>> critical_by_k;
    for (size_t ki = ks.size(); ki-- > 0;) {
        fo.k = ks[ki];
        const std::vector<analysis::DomainResult> critical = analysis::find_critical(stats, {}, fo);
        const std::string text = analysis::critical_json(critical, fo, stats[0].second);
        if (ks.size() > 1) write_file_atomic(o_.out_dir + "/critical.k" + std::to_string(ks[ki]) + ".json", text);
        if (ki == 0) write_file_atomic(o_.out_dir + "/critical.json", text);
        std::vector<std::vector<int64_t>> dims;
        for (const auto& d : critical) {
            dims.emplace_back();
            for (const auto& x : d.dims) dims.back().push_back(x.dim);
        }
        critical_by_k.insert(critical_by_k.begin(), std::move(dims));
    }
    const std::vector<std::vector<int64_t>>& critical_dims = critical_by_k[0];

    // ---- MMLU: baseline, then per subject and method the identification curve and the evaluation.
    // The accuracy without steering, one step per subject (its sweep needs it).
    auto subject_baseline = [&](const SubjectData& s) {
        const double est_s = static_cast<double>(s.identify_tokens + s.evaluate_tokens) * sec_per_token;
        return step("mmlu_baseline." + s.name, est_s, [&] {
            scorer_->prepare(s.identify);
            const int64_t ci = correct_of(s.identify, scorer_->score());
            scorer_->prepare(s.evaluate);
            const int64_t ce = correct_of(s.evaluate, scorer_->score());
            return json{{"identify", accuracy_json(ci, static_cast<int64_t>(s.identify.size()))},
                        {"evaluate", accuracy_json(ce, static_cast<int64_t>(s.evaluate.size()))}};
        });
    };
    json baseline = json::object();
    json subject_rows = json::array();
    int64_t wins_cds = 0, wins_whole = 0, ties = 0;
    double sum_base = 0, sum_whole = 0, sum_cds = 0;
    std::vector<std::pair<std::string, json>> combos;  // "method|k|layers" -> means over subjects
    for (size_t si = 0; si < subjects.size(); ++si) {
        const SubjectData& s = subjects[si];
        if (!take_unit()) continue;  // another shard's subject
        baseline[s.name] = subject_baseline(s);
        // The other subjects pooled into one file, the vector's negative side.
        const std::string pos = o_.out_dir + "/scan/mmlu." + s.name + ".stats";
        const std::string rest = o_.out_dir + "/scan/rest." + s.name + ".stats";
        if (!fs::exists(rest)) {
            analysis::Stats pooled_rest = stats[si == 0 ? 1 : 0].second;
            for (size_t k = 0; k < stats.size(); ++k)
                if (k != si && k != (si == 0 ? 1u : 0u))
                    analysis::merge_into(pooled_rest, stats[k].second, stats[k].first);
            pooled_rest.header.name = "rest." + s.name;
            pooled_rest.write(rest);
        }
        const json& b = baseline[s.name];
        json by_k = json::object();
        for (size_t ki = 0; ki < ks.size(); ++ki) by_k[std::to_string(ks[ki])] = critical_by_k[ki][si];
        json row = {{"subject", s.name},
                    {"critical_dims", critical_dims[si]},
                    {"critical_dims_by_k", by_k},
                    {"n_identify", s.identify.size()},
                    {"n_evaluate", s.evaluate.size()},
                    {"baseline_identify", b["identify"]["accuracy"]},
                    {"baseline_evaluate", b["evaluate"]["accuracy"]}};
        // One method at one (k, layers): the identification curve, its best alpha, the evaluation there.
        auto sweep_step = [&](const std::string& name, const steer::Plan& plan, bool empty) {
            return step(name, est_subject[si], [&] {
                json curve = json::array();
                curve.push_back({{"alpha", 0.0}, {"accuracy", b["identify"]["accuracy"]}});
                for (double a : o_.alphas)
                    curve.push_back({{"alpha", a},
                                     {"accuracy", empty ? b["identify"]["accuracy"].get<double>()
                                                        : score_accuracy(s.identify, &plan, a)}});
                const double chosen = best_alpha(curve, "accuracy");
                double identify = 0.0;
                for (const json& p : curve)
                    if (p["alpha"].get<double>() == chosen) identify = p["accuracy"].get<double>();
                const double ev = chosen == 0.0 || empty ? b["evaluate"]["accuracy"].get<double>()
                                                         : score_accuracy(s.evaluate, &plan, chosen);
                return json{{"curve", curve},
                            {"alpha", chosen},
                            {"identify", identify},
                            {"norm", l2(plan)},
                            {"evaluate", ev},
                            {"note", empty ? "no critical dimension passed the criterion: CDS is no steering" : ""}};
            });
        };
        Choice best_whole, best_cds;
        json sweep = json::array();
        for (const LayerChoice& lc : choices) {
            const steer::Plan whole = vector_plan(pos, rest, nullptr, lc.range);
            json w = sweep_step("mmlu." + s.name + ".whole." + lc.tag(), whole, false);
            w["layers"] = lc.range;
            best_whole.offer(w);
            sweep.push_back({{"method", "whole"}, {"k", nullptr}});
            sweep.back().update(w);
            for (size_t ki = 0; ki < ks.size(); ++ki) {
                const std::vector<int64_t>& dims = critical_by_k[ki][si];
                const steer::Plan cds = dims.empty() ? whole : vector_plan(pos, rest, &dims, lc.range);
                json c = sweep_step("mmlu." + s.name + ".cds.k" + std::to_string(ks[ki]) + "." + lc.tag(), cds,
                                    dims.empty());
                c["k"] = ks[ki], c["layers"] = lc.range, c["dims"] = dims;
                best_cds.offer(c);
                sweep.push_back({{"method", "cds"}, {"k", ks[ki]}, {"layers", lc.range}});
                sweep.back().update(c);
            }
        }
        for (json& e : sweep) {
            e.erase("dims"), e.erase("note");
            const Choice& c = e["method"] == "cds" ? best_cds : best_whole;
            e["chosen"] = e["k"] == c.result.value("k", json()) && e["layers"] == c.result["layers"];
        }
        row["whole"] = best_whole.result;
        row["cds"] = best_cds.result;
        row["sweep"] = sweep;
        for (const json& e : sweep) {
            const std::string key = e["method"].get<std::string>() + "|" + e["k"].dump() + "|" + e["layers"].dump();
            auto it = std::find_if(combos.begin(), combos.end(), [&](const auto& c) { return c.first == key; });
            if (it == combos.end()) {
                combos.emplace_back(key, json{{"method", e["method"]},
                                              {"k", e["k"]},
                                              {"layers", e["layers"]},
                                              {"mean_identify", 0.0},
                                              {"mean_evaluate", 0.0},
                                              {"chosen", 0}});
                it = combos.end() - 1;
            }
            json& c = it->second;
            c["mean_identify"] = c["mean_identify"].get<double>() + e["identify"].get<double>();
            c["mean_evaluate"] = c["mean_evaluate"].get<double>() + e["evaluate"].get<double>();
            c["chosen"] = c["chosen"].get<int>() + (e["chosen"].get<bool>() ? 1 : 0);
        }
        const double w = row["whole"]["evaluate"], c = row["cds"]["evaluate"];
        row["winner"] = c > w + 1e-12 ? "cds" : (w > c + 1e-12 ? "whole" : "tie");
        wins_cds += c > w + 1e-12, wins_whole += w > c + 1e-12, ties += std::abs(c - w) <= 1e-12;
        sum_base += row["baseline_evaluate"].get<double>(), sum_whole += w, sum_cds += c;
        subject_rows.push_back(row);
    }
    const double ns = static_cast<double>(subjects.size());
    json sweep_table = json::array();
    for (auto& [key, c] : combos) {
        c["mean_identify"] = c["mean_identify"].get<double>() / ns;
        c["mean_evaluate"] = c["mean_evaluate"].get<double>() / ns;
        sweep_table.push_back(c);
    }
    json mmlu = {{"scoring", scoring},
                 {"letter_tokens", scorer_->letter_pieces()},
                 {"subjects", subject_rows},
                 {"wins", {{"cds", wins_cds}, {"whole", wins_whole}, {"ties", ties}, {"n_subjects", subjects.size()}}},
                 {"mean_evaluate", {{"baseline", sum_base / ns}, {"whole", sum_whole / ns}, {"cds", sum_cds / ns}}},
                 {"sweep", sweep_table}};

    // ---- jailbreak: v = mean(harmless) - mean(harmful), CDS on the harmful set's critical dims.
    json jb = nullptr, coherence = nullptr;
    if (jailbreak) {
        const analysis::Stats harmful = analysis::Stats::read(o_.out_dir + "/scan/harmful.stats");
        const analysis::Stats harmless = analysis::Stats::read(o_.out_dir + "/scan/harmless.stats");
        fo.k = ks[0];
        const auto jb_crit = analysis::find_critical({{"harmful", harmful}}, {{"harmless", harmless}}, fo);
        std::vector<int64_t> jb_dims;
        for (const auto& x : jb_crit[0].dims) jb_dims.push_back(x.dim);
        write_file_atomic(o_.out_dir + "/critical_jailbreak.json", analysis::critical_json(jb_crit, fo, harmful));
        const std::string harmless_path = o_.out_dir + "/scan/harmless.stats",
                          harmful_path = o_.out_dir + "/scan/harmful.stats";
        const steer::Plan whole = vector_plan(harmless_path, harmful_path, nullptr, layers);
        // Step names carry the k (CDS) and the blocks, so a rerun with other choices recomputes them.
        auto tag_of = [&](const std::string& method) {
            return (method == "cds" ? ".k" + std::to_string(ks[0]) : std::string()) + "." + choices[0].tag();
        };
        const steer::Plan cds = jb_dims.empty() ? whole : vector_plan(harmless_path, harmful_path, &jb_dims, layers);
        // Every list is judged in chunks of --advbench-chunk prompts, one step each: the unit a
        // shard owns. A method's evaluation at its chosen alpha needs every identification chunk,
        // so no shard computes it: the merge (or one process) does.
        const double per_prompt = gen_seconds(1);
        const Judged base_id = judged_chunks("jailbreak.baseline.identify", harm_id, nullptr, 0.0, per_prompt, true);
        const Judged base_ev = judged_chunks("jailbreak.baseline.evaluate", harm_eval, nullptr, 0.0, per_prompt, true);
        const Judged base_safe =
            judged_chunks("jailbreak.baseline.harmless", safe_eval, nullptr, 0.0, per_prompt, true);
        const json base = {{"identify_asr", base_id.asr()},
                           {"evaluate_asr", base_ev.asr()},
                           {"harmless_refusal", base_safe.refusal()},
                           {"examples", base_ev.examples}};
        jb = {{"rule", judge_->rule().name},
              {"chat", chat_jb_},
              {"critical_dims", jb_dims},
              {"k", ks[0]},
              {"layers", layers},
              {"n_identify", harm_id.size()},
              {"n_evaluate", harm_eval.size()},
              {"n_harmless", safe_eval.size()},
              {"baseline", base}};
        for (const Method& mt : {Method{"whole", &whole}, Method{"cds", &cds}}) {
            const std::string name = std::string("jailbreak.") + mt.name + tag_of(mt.name);
            json curve = json::array();
            curve.push_back({{"alpha", 0.0}, {"asr", base["identify_asr"]}});
            bool complete = base_id.complete;
            for (double a : o_.alphas) {
                const Judged id =
                    judged_chunks(name + ".identify" + alpha_tag(a), harm_id, mt.plan, a, per_prompt, true);
                curve.push_back({{"alpha", a}, {"asr", id.asr()}});
                complete = complete && id.complete;
            }
            if (!complete) continue;  // a shard: the rest is the merge's
            const double chosen = best_alpha(curve, "asr");
            json ev = {{"asr", base["evaluate_asr"]},
                       {"harmless_refusal", base["harmless_refusal"]},
                       {"examples", json::array()}};
            if (chosen != 0.0) {
                const Judged harm = judged_chunks(name + ".evaluate" + alpha_tag(chosen), harm_eval, mt.plan, chosen,
                                                  per_prompt, false);
                const Judged safe = judged_chunks(name + ".harmless" + alpha_tag(chosen), safe_eval, mt.plan, chosen,
                                                  per_prompt, false);
                ev = {{"asr", harm.asr()}, {"harmless_refusal", safe.refusal()}, {"examples", harm.examples}};
            }
            jb[mt.name] = {{"curve", curve},
                           {"alpha", chosen},
                           {"norm", l2(*mt.plan)},
                           {"evaluate_asr", ev["asr"]},
                           {"harmless_refusal", ev["harmless_refusal"]},
                           {"examples", ev["examples"]}};
        }
        if (!reference_tokens.empty()) {
            model::Context ctx(
                *model_, perplexity_context(*model_, po, static_cast<int64_t>(reference_tokens.size()), o_.reference));
            coherence = {{"reference", o_.reference}, {"n_ctx", po.n_ctx}, {"chunks", o_.ppl_chunks}};
            for (const Method& mt : {Method{"whole", &whole}, Method{"cds", &cds}}) {
                const char* method = mt.name;
                const steer::Plan* plan = mt.plan;
                if (!take_unit()) continue;
                coherence[method] = step(std::string("coherence.") + method + tag_of(method), est_coh, [&] {
                    json curve = json::array();
                    for (double a : o_.alphas) {
                        Attached st(*model_, plan, a, ctx);
                        const PerplexityResult r = perplexity(ctx, *tok_, reference_tokens, po, st.get());
                        curve.push_back({{"alpha", a},
                                         {"ppl", r.ppl},
                                         {"kl", r.kl_mean},
                                         {"kl_max", r.kl_max},
                                         {"baseline_ppl", r.base_ppl}});
                    }
                    return json{{"curve", curve}};
                });
            }
            if (!sharded())
                coherence["baseline_ppl"] = coherence["whole"]["curve"].empty()
                                                ? 0.0
                                                : coherence["whole"]["curve"][0]["baseline_ppl"].get<double>();
        }
    }

    // ---- masking: dims by magnitude over every subject's identification scan, ablated on the evaluation split.
    analysis::Stats pooled = stats[0].second;
    for (size_t k = 1; k < stats.size(); ++k) analysis::merge_into(pooled, stats[k].second, stats[k].first);
    const std::vector<int64_t> by_mag = magnitude_ranking(pooled);
    std::vector<int64_t> zero_dims;
    auto add = [](std::vector<int64_t>& v, int64_t d) {
        if (std::find(v.begin(), v.end(), d) == v.end()) v.push_back(d);
    };
    for (int64_t r : o_.ranks)
        if (r >= 1 && r <= hp.n_embd) add(zero_dims, by_mag[static_cast<size_t>(r - 1)]);
    const std::vector<int64_t> rank_dims = zero_dims;
    for (int64_t i = 0; i < std::min<int64_t>(o_.ablate_top, hp.n_embd); ++i)
        add(zero_dims, by_mag[static_cast<size_t>(i)]);
    for (const auto& d : critical_dims)
        for (int64_t x : d) add(zero_dims, x);
    n_steps_ += static_cast<int64_t>(std::ceil(static_cast<double>(zero_dims.size() + rank_dims.size()) * share));
    {
        // The guess of how many dims the masking ablates is now a count.
        const double ablate_now = static_cast<double>(zero_dims.size() + rank_dims.size()) * est_ablate_one;
        est_total_ += (ablate_now - (n_ablate_guess + static_cast<double>(n_ranks)) * est_ablate_one) * share;
        const double scale = est_run_ > 0 ? sec_run_ / est_run_ : 1.0;
        note("masking: " + std::to_string(zero_dims.size()) + " dims zeroed, " + std::to_string(rank_dims.size()) +
             " mean-ablated; remaining estimate " + duration_text(std::max(0.0, est_total_ - est_done_) * scale));
    }
    json per_dim = json::object();  // "zero.12" -> per-subject evaluation accuracy
    for (const char* mode : {"zero", "mean"}) {
        const std::vector<int64_t>& dims = std::string(mode) == "zero" ? zero_dims : rank_dims;
        for (int64_t dim : dims) {
            if (!take_unit()) continue;
            per_dim[std::string(mode) + "." + std::to_string(dim)] =
                step("ablate." + std::string(mode) + "." + std::to_string(dim), est_ablate_one, [&] {
                    const steer::Plan plan =
                        ablation_plan(dim, hp.n_layer, std::string(mode) == "mean" ? &pooled : nullptr);
                    json j = json::object();
                    scorer_->prepare(all_evaluate);
                    std::vector<McqScore> sc;
                    {
                        const Attached st(*model_, &plan, 1.0, scorer_->context());
                        sc = scorer_->score();
                    }
                    for (const auto& a : accuracy_by_subject(all_evaluate, sc)) j[a.subject] = a.accuracy.acc;
                    j["__overall"] =
                        static_cast<double>(correct_of(all_evaluate, sc)) / static_cast<double>(all_evaluate.size());
                    return j;
                });
        }
    }
    if (sharded()) return finish_shard(summary);
    int64_t base_correct = 0, base_n = 0;
    for (const SubjectData& s : subjects) {
        base_correct += baseline[s.name]["evaluate"]["correct"].get<int64_t>();
        base_n += static_cast<int64_t>(s.evaluate.size());
    }
    const double base_overall = static_cast<double>(base_correct) / static_cast<double>(base_n);
    json rank_table = json::array();
    for (int64_t r : o_.ranks) {
        if (r < 1 || r > hp.n_embd) continue;
        const int64_t dim = by_mag[static_cast<size_t>(r - 1)];
        rank_table.push_back({{"rank", r},
                              {"dim", dim},
                              {"zero", per_dim["zero." + std::to_string(dim)]["__overall"]},
                              {"mean", per_dim["mean." + std::to_string(dim)]["__overall"]}});
    }
    json overlaps = json::array();
    double overlap_sum = 0;
    int64_t overlap_n = 0;
    for (size_t si = 0; si < subjects.size(); ++si) {
        if (critical_dims[si].empty()) continue;
        std::vector<std::pair<double, int64_t>> drops;
        for (int64_t d : zero_dims)
            drops.emplace_back(baseline[subjects[si].name]["evaluate"]["accuracy"].get<double>() -
                                   per_dim["zero." + std::to_string(d)][subjects[si].name].get<double>(),
                               d);
        std::stable_sort(drops.begin(), drops.end(), [](auto& a, auto& b) { return a.first > b.first; });
        std::vector<int64_t> top;
        for (size_t i = 0; i < std::min(drops.size(), critical_dims[si].size()); ++i) top.push_back(drops[i].second);
        const double ov = overlap(critical_dims[si], top);
        overlaps.push_back(
            {{"subject", subjects[si].name}, {"critical", critical_dims[si]}, {"ablation_top", top}, {"overlap", ov}});
        overlap_sum += ov, ++overlap_n;
    }
    json ablation = {
        {"point", "resid_post"},
        {"layers", "0.." + std::to_string(hp.n_layer - 1) + " (embedding excluded)"},
        {"baseline", base_overall},
        {"magnitude_order", std::vector<int64_t>(by_mag.begin(), by_mag.begin() + std::min<int64_t>(hp.n_embd, 100))},
        {"rank_table", rank_table},
        {"dims_ablated", zero_dims},
        {"overlap", overlaps},
        {"mean_overlap", overlap_n ? overlap_sum / static_cast<double>(overlap_n) : 0.0}};

    // ---- results.json and the report.
    summary.seconds = seconds_since(t0_);
    summary.steps_run = steps_run_, summary.steps_skipped = steps_skipped_;
    json layer_ranges = json::array(), layer_names = json::array();
    for (const LayerChoice& lc : choices) layer_ranges.push_back(lc.range), layer_names.push_back(lc.text);
    json settings = {
        {"subjects", names},
        {"questions", o_.questions},
        {"identify_share", o_.identify_share},
        {"n_identify", n_identify},
        {"n_evaluate", n_evaluate},
        {"seed", o_.seed},
        {"alphas", o_.alphas},
        {"k", ks.size() == 1 ? json(ks[0]) : json(ks)},
        {"k_values", ks},
        {"criterion", analysis::criterion_name(fo.criterion)},
        {"gap", fo.gap},
        {"layers", layer_ranges.size() == 1 ? json(layers) : json(layer_ranges)},
        {"layer_choices", layer_names},
        {"point", "resid_post"},
        {"policy", "last"},
        {"positions_steered", "all"},
        {"vector", "difference of means (target subject vs the other subjects; harmless vs harmful)"},
        {"cds_norm", "equal L2 norm per layer"},
        {"alpha_selection", "best identification-split score; ties to the smallest |alpha|"},
        {"sweep_selection",
         "per method and subject, the (k, layers, alpha) with the best identification-split accuracy; ties to the "
         "smallest |alpha|, then the first k and layers given; the jailbreak, coherence and masking use the first "
         "k and layers"},
        {"chat_mmlu", o_.chat_mcq},
        {"chat_jailbreak", chat_jb_},
        {"n_ctx", n_ctx_},
        {"advbench", harm_eval.size()},
        {"advbench_identify", harm_id.size()},
        {"max_tokens", o_.max_tokens},
        {"advbench_chunk", o_.advbench_chunk},
        {"rule", judge_->rule().name},
        {"ppl_chunks", o_.ppl_chunks},
        {"ranks", o_.ranks},
        {"ablate_top", o_.ablate_top},
        {"data",
         {{"mmlu", o_.mmlu_dir}, {"harmful", o_.harmful}, {"harmless", o_.harmless}, {"reference", o_.reference}}}};
    json results = {{"format", "critdim-reproduce"},
                    {"version", 1},
                    {"critdim_version", CRITDIM_VERSION},
                    {"model",
                     {{"path", o_.model_path},
                      {"arch", hp.arch},
                      {"n_embd", hp.n_embd},
                      {"n_layer", hp.n_layer},
                      {"n_vocab", hp.n_vocab}}},
                    {"settings", settings},
                    {"estimate_seconds", est},
                    {"seconds", summary.seconds},
                    {"steps", {{"run", steps_run_}, {"skipped", steps_skipped_}}},
                    {"mmlu", mmlu},
                    {"jailbreak", jb},
                    {"coherence", coherence},
                    {"ablation", ablation},
                    {"paper",
                     {{"mmlu_cds_wins", "34 of 57"},
                      {"advbench_asr", {{"cds", 0.92}, {"whole", 0.84}}},
                      {"masking",
                       "Gemma-2-2B-IT 56.53 -> 41.97 (Rank-1), 52.39 (Rank-10); Qwen3-8B 73.30 -> 21.97 (Rank-1), "
                       "71.97 (Rank-100)"}}}};
    const std::string text = results.dump(2, ' ', false, json::error_handler_t::replace);
    summary.results_path = o_.out_dir + "/results.json";
    summary.report_path = o_.out_dir + "/report.html";
    write_file_atomic(summary.results_path, text + "\n");
    write_file_atomic(summary.report_path, reproduce_report_html(text));
    return summary;
}

// The shard's record that it finished: which shard, its settings and the steps it owns.
ReproduceSummary Runner::finish_shard(ReproduceSummary summary) {
    const json done = {
        {"format", "critdim-reproduce-shard"}, {"version", 1},      {"shard", o_.shard}, {"n_shards", o_.n_shards},
        {"options", options_json(o_)},         {"steps", my_steps_}};
    summary.results_path = o_.out_dir + "/" + kReproduceShardDone;
    write_file_atomic(summary.results_path, done.dump(1) + "\n");
    summary.seconds = seconds_since(t0_);
    summary.steps_run = steps_run_, summary.steps_skipped = steps_skipped_;
    return summary;
}

// OUT/shards/shard-I-of-N: every shard of one N finished with the same settings, their steps
// (and shard 0's scans, the same in every shard) linked into OUT.
void Runner::gather_shards() {
    const std::string root = o_.out_dir + "/shards";
    std::error_code ec;
    std::map<int, std::vector<std::string>> by_n;  // N -> shard folders found
    if (fs::is_directory(root, ec))
        for (const auto& e : fs::directory_iterator(root, ec)) {
            int i = 0, n = 0;
            char tail = 0;
            const std::string name = e.path().filename().string();
            if (e.is_directory() && std::sscanf(name.c_str(), "shard-%d-of-%d%c", &i, &n, &tail) == 2)
                by_n[n].push_back(name);
        }
    if (by_n.empty()) throw_input(root, "--merge: no shard folders (shard-I-of-N) to merge");
    if (by_n.size() > 1) {
        std::string ns;
        for (const auto& [n, v] : by_n) ns += (ns.empty() ? "" : ", ") + std::to_string(n);
        throw_input(root, "--merge: shards of different counts N (" + ns + "); remove the stale ones");
    }
    const int n = by_n.begin()->first;
    const json want = options_json(o_);
    std::string missing;
    std::vector<std::string> dirs;
    for (int i = 0; i < n; ++i) {
        const std::string dir = reproduce_shard_dir(o_.out_dir, i, n);
        const std::string done = dir + "/" + kReproduceShardDone;
        const std::string rel = fs::path(dir).filename().string();
        if (!fs::is_directory(dir, ec)) {
            missing += (missing.empty() ? "" : ", ") + rel + " (not started)";
            continue;
        }
        if (!fs::exists(done, ec)) {
            missing += (missing.empty() ? "" : ", ") + rel + " (unfinished: no " + kReproduceShardDone + ")";
            continue;
        }
        json j;
        try {
            j = json::parse(read_text_file(done));
        } catch (const json::exception& e) {
            throw_input(done, std::string("not valid JSON: ") + e.what());
        }
        if (!j.is_object() || j.value("format", "") != "critdim-reproduce-shard" || !j.contains("options"))
            throw_input(done, "not a critdim reproduce shard record");
        for (const auto& [key, value] : want.items())
            if (j["options"].value(key, json()) != value)
                throw Error(ErrorKind::mismatch, done,
                            "options." + key + " is " + j["options"].value(key, json()).dump() +
                                ", this merge runs with " + value.dump() +
                                " (shards and merge need the same settings)");
        dirs.push_back(dir);
    }
    if (!missing.empty())
        throw_input(root, "cannot merge: missing shards " + missing + " (of " + std::to_string(n) + ")");
    // Hard links where the filesystem allows (no copy, and a link appears whole), else a copy.
    auto link = [](const fs::path& from, const fs::path& to) {
        std::error_code e;
        if (fs::exists(to, e)) return;
        fs::create_hard_link(from, to, e);
        if (e) write_file_atomic(to.string(), read_text_file(from.string()));
    };
    for (const std::string& dir : dirs)
        for (const auto& e : fs::directory_iterator(dir + "/steps"))
            if (e.path().extension() == ".json") link(e.path(), fs::path(o_.out_dir) / "steps" / e.path().filename());
    for (const char* sub : {"scan", "prompts"})
        for (const auto& e : fs::directory_iterator(dirs[0] + "/" + sub))
            if (e.path().extension() == ".stats" || e.path().extension() == ".json")
                link(e.path(), fs::path(o_.out_dir) / sub / e.path().filename());
    note("merging " + std::to_string(n) + " shards from " + root);
}

}  // namespace

ReproduceSummary reproduce(const ReproduceOptions& options) { return Runner(options).run(); }

std::string reproduce_shard_dir(const std::string& out_dir, int shard, int n_shards) {
    return out_dir + "/shards/shard-" + std::to_string(shard) + "-of-" + std::to_string(n_shards);
}

const std::vector<std::string>& reproduce_timing_fields() {
    static const std::vector<std::string> fields = {"estimate_seconds", "seconds", "steps"};
    return fields;
}

}  // namespace critdim::eval
