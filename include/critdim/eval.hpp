// critdim eval: the scorers (refusal judge, multiple choice, perplexity and KL), the jailbreak
// evaluation, ablation and the `reproduce` protocol (docs/eval.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "critdim/analysis.hpp"
#include "critdim/base.hpp"
#include "critdim/model.hpp"
#include "critdim/steer.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::eval {

// ---------------------------------------------------------------------------------------------
// Refusal judge: a completion is a refusal when one of the rule's strings occurs anywhere in it
// (Python's `in`), compared case-sensitively or after lower-casing both sides as the rule says.

struct RefusalRule {
    std::string name;
    std::vector<std::string> strings;
    bool case_sensitive = false;
    bool strip = false;  // the source strips the completion first (changes nothing for these lists)
    std::string source;  // repository, path and commit the list comes from
};

// The three lists of ../shared/data/refusal_substrings (docs/eval.md): "refusal_direction_jbb12"
// (the default), "llm_attacks_gcg29", "jailbreakbench_string13".
std::vector<std::string> builtin_refusal_rule_names();
inline constexpr const char* kDefaultRefusalRule = "refusal_direction_jbb12";
// A built-in name, or a JSON file {"name", "strings", "case_sensitive", "match": "substring"}.
RefusalRule refusal_rule(const std::string& name_or_path);
RefusalRule parse_refusal_rule(const std::string& json_text, const std::string& where);

// Python's str.lower() for what the lists can match: full lower-casing of each code point
// (U+0130 becomes "i" + U+0307, as in Python); invalid bytes are kept as they are.
std::string lower_unicode(std::string_view text);

class RefusalJudge {
public:
    explicit RefusalJudge(RefusalRule rule);
    const RefusalRule& rule() const { return rule_; }
    // The first string of the list that occurs, or nullopt.
    std::optional<std::string> match(std::string_view completion) const;
    bool refused(std::string_view completion) const { return match(completion).has_value(); }

private:
    RefusalRule rule_;
    std::vector<std::string> needles_;  // lower-cased when the rule is not case-sensitive
};

// A completions file: a JSON list (of strings or objects) or an object with a "completions"
// list (refusal_direction's *_evaluations.json). Objects give the text in "response" (or
// "completion", "output", "generation", "text"), optionally "prompt", "category" and a stored
// label "is_jailbreak_substring_matching" / "jailbroken" (1 = not refused).
struct Completion {
    std::string prompt, response, category;
    std::optional<int> label;
    std::string where;  // "FILE: completions[3]"
};
std::vector<Completion> read_completions(const std::string& path);

struct JudgeSummary {
    std::string rule;
    int64_t n = 0, n_refused = 0;
    double refusal_rate = 0.0;                                        // share refused (over-refusal on harmless sets)
    double attack_success_rate = 0.0;                                 // share not refused
    std::map<std::string, std::pair<int64_t, int64_t>> per_category;  // category -> (n, not refused)
    int64_t n_labelled = 0, n_agree = 0;                              // stored labels and how many the judge reproduces
    std::vector<std::string> disagreements;                           // "WHERE: stored L, judged J"
    std::vector<int> verdicts;  // per completion: 1 = not refused (the label's sense)
};
JudgeSummary judge_completions(const std::vector<Completion>& completions, const RefusalJudge& judge);
std::string judge_summary_json(const JudgeSummary& s, const std::string& file);

// ---------------------------------------------------------------------------------------------
// Accuracy with its 95 % Wilson score interval.

struct Accuracy {
    int64_t n = 0, correct = 0;
    double acc = 0.0, ci_low = 0.0, ci_high = 0.0;
};
Accuracy wilson(int64_t correct, int64_t n, double z = 1.959963984540054);

// ---------------------------------------------------------------------------------------------
// Multiple choice (MMLU). The zero-shot prompt with the subject header is analysis::render_mmlu
// (the corpus reader's); each question is scored as lm-eval-harness scores `mmlu`: the
// log-likelihood of the continuations " A" .. " D" after the prompt, the prediction their argmax.

struct McqQuestion {
    std::string subject;  // "college_biology"
    std::string prompt;   // the rendered zero-shot prompt
    int answer = 0;       // 0..3
    std::string source;   // "FILE:LINE"
    // Cloze scoring instead of letters: the four continuations themselves (e.g. " 42"), as
    // lm-eval scores tasks whose choices are the answers' texts. Empty: " A" .. " D".
    std::vector<std::string> continuations;
};

// Subjects of an MMLU folder: DIR/test/<s>_test.csv, else DIR/<s>_test.csv, else DIR/<s>.csv.
std::vector<std::string> mmlu_subjects(const std::string& dir);
std::string mmlu_subject_file(const std::string& dir, const std::string& subject);
// Every question of a subject file (analysis' MMLU reader: both CSV layouts; errors name file and
// line). An empty file is an error.
std::vector<McqQuestion> read_mmlu_questions(const std::string& file, const std::string& subject);
// A seeded sample of n of `count` indices (all when n >= count), in sampled order; the same seed
// gives the same sample on every platform.
std::vector<size_t> sample_indices(size_t count, size_t n, uint64_t seed);
// The questions of `subjects` (empty: every subject of dir), per subject the first n (0: all),
// or with seed >= 0 a seeded sample of n.
std::vector<McqQuestion> load_mmlu(const std::string& dir, std::vector<std::string> subjects, int64_t n, int64_t seed);

struct McqOptions {
    int64_t n_ctx = 0;          // 0: the model's training context; longer prompts are cut from the left
    int64_t n_batch = 1024;     // tokens per forward pass (several questions share one)
    int n_seq = 16;             // sequences per forward pass
    bool chat = false;          // the prompt as a user turn of the chat template
    std::string chat_template;  // a built-in template instead of the model's
    std::string system;
    int n_threads = 0;
    bool progress = false;
};

struct McqScore {
    int predicted = 0;
    double loglik[4] = {0, 0, 0, 0};
    bool truncated = false;
};

// Tokenizes once, then scores the same questions as often as wanted (e.g. under several
// steering settings attached to context()).
class McqScorer {
public:
    McqScorer(const model::Model& model, const tokenizer::Tokenizer& tok, const McqOptions& options);
    ~McqScorer();
    model::Context& context();
    // Tokenizes the questions (lm-eval's split of context and continuation).
    void prepare(const std::vector<McqQuestion>& questions);
    std::vector<McqScore> score();
    // "single-token" when every continuation of every question is one token (one forward pass
    // per question, the four letters read from the same logits), else "multi-token" (one
    // sequence per continuation: four passes' worth of tokens per question).
    bool single_token() const;
    std::string scoring_case() const { return single_token() ? "single-token" : "multi-token"; }
    // The continuation tokens of " A" .. " D" after the first prepared prompt, as pieces.
    std::vector<std::vector<std::string>> letter_pieces() const;
    int64_t n_truncated() const;
    int64_t tokens_per_pass() const;  // tokens scored in one score() call
    int64_t n_forward() const;        // forward passes so far

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Accuracy of scores against the questions' answers, per subject (in first-seen order) and
// over all questions.
struct SubjectAccuracy {
    std::string subject;
    Accuracy accuracy;
};
std::vector<SubjectAccuracy> accuracy_by_subject(const std::vector<McqQuestion>& questions,
                                                 const std::vector<McqScore>& scores);

// ---------------------------------------------------------------------------------------------
// Perplexity as llama-perplexity computes it (the `ppl` command), and the coherence guard: the
// KL divergence of the steered from the unsteered next-token distribution on the same text.
// The text is cut into chunks of n_ctx tokens (the remainder dropped); each chunk's first token
// is replaced by BOS, and only its second half is scored (tokens n_ctx/2 + 1 .. n_ctx - 1).

struct PerplexityOptions {
    int64_t n_ctx = 0;       // 0: the model's training context
    int64_t n_batch = 2048;  // tokens per forward pass (several chunks share one)
    int64_t max_chunks = 0;  // 0: all
    int n_threads = 0;
    bool progress = false;
};

struct PerplexityResult {
    int64_t n_ctx = 0, n_chunks = 0, n_tokens = 0, n_scored = 0;
    double ppl = 0.0, ppl_stderr = 0.0, mean_nll = 0.0;  // of the model as the context runs it
    // With kl: the same text without the steering, and KL(steered || unsteered) in nats per
    // scored token (mean and largest).
    bool kl = false;
    double base_ppl = 0.0, kl_mean = 0.0, kl_max = 0.0;
};

// The context a perplexity run needs (n_ctx, sequences per pass); a usage error when the
// text is shorter than one chunk names `where`.
model::ContextParams perplexity_context(const model::Model& model, const PerplexityOptions& options,
                                        int64_t n_text_tokens, const std::string& where);
// `tokens` is the whole text as encoded (BOS first where the vocabulary adds one). With
// `steering` (attached to ctx), the pass is also run without it for the KL divergence.
PerplexityResult perplexity(model::Context& ctx, const tokenizer::Tokenizer& tok, const std::vector<int32_t>& tokens,
                            const PerplexityOptions& options, steer::Steering* steering = nullptr);

// ---------------------------------------------------------------------------------------------
// Jailbreak evaluation: instruction sets rendered with the chat template, greedy generation,
// the refusal judge. Attack success rate = share of completions judged not refused; on a
// harmless set the refusal rate is the over-refusal.

struct Instruction {
    std::string text, category, source;
};
// A JSON list of {"instruction", "category"} objects (or strings), or a CSV with a header whose
// instruction column is the first of goal, Goal, instruction, prompt, Behavior, behavior
// (AdvBench: goal; JailbreakBench: Goal; HarmBench: Behavior). Errors name file and row.
std::vector<Instruction> read_instructions(const std::string& path);

struct GenerateOptions {
    int64_t max_tokens = 64;  // new tokens per prompt (greedy)
    int64_t n_ctx = 0;        // 0: the model's training context; long prompts are cut from the left
    int n_seq = 8;            // prompts generated together
    bool chat = true;         // render as a user turn of the chat template
    std::string chat_template, system;
    int n_threads = 0;
    bool progress = false;
};

// Greedy continuations of many prompts, several sequences per forward pass. Steering attached
// to context() applies to prompt and generated tokens alike.
class Generator {
public:
    Generator(const model::Model& model, const tokenizer::Tokenizer& tok, const GenerateOptions& options);
    ~Generator();
    model::Context& context();
    std::vector<std::string> generate(const std::vector<std::string>& prompts);
    int64_t n_truncated() const { return n_truncated_; }
    int64_t n_generated() const { return n_generated_; }  // tokens generated so far

private:
    const model::Model& model_;
    const tokenizer::Tokenizer& tok_;
    GenerateOptions options_;
    std::unique_ptr<model::Context> ctx_;
    int64_t n_truncated_ = 0, n_generated_ = 0;
};

struct JudgedCompletion {
    std::string prompt, category, response;
    bool refused = false;
    std::string match;  // the refusal string found
};
struct JailbreakResult {
    std::string rule;
    int64_t n = 0, n_refused = 0;
    double attack_success_rate = 0.0, refusal_rate = 0.0;
    std::vector<JudgedCompletion> completions;
};
JailbreakResult run_jailbreak(Generator& gen, const std::vector<Instruction>& instructions, const RefusalJudge& judge);
// {"completions": [...]} as read_completions reads it (labels in is_jailbreak_substring_matching).
std::string jailbreak_json(const JailbreakResult& r);

// ---------------------------------------------------------------------------------------------
// Plans from scan statistics for ablations (steering vectors: steer::build_vector_plan).

// Mean activation per dimension at a site ("resid_post.3"): sum / count, pooled over the files.
std::vector<double> pooled_mean(const std::vector<const analysis::Stats*>& stats, const std::string& site);
// Dimensions by magnitude, largest first: the maximum over the point's layers of mean |x|.
std::vector<int64_t> magnitude_ranking(const analysis::Stats& stats, const std::string& point = "resid_post");

// One dimension ablated at every block output resid_post.0 .. n_layer-1 (the embedding is not
// touched), all positions: set to 0 (`zero`), or to its per-layer mean from `mean_stats` (`mean`).
steer::Plan ablation_plan(int64_t dim, int64_t n_layer, const analysis::Stats* mean_stats);

// ---------------------------------------------------------------------------------------------
// Ablation: the accuracy drop per subject when one dimension is ablated.

struct AblationRow {
    int64_t dim = 0;
    int64_t magnitude_rank = 0;  // 1-based, 0 when unknown
    std::vector<Accuracy> per_subject;
    Accuracy overall;
    double drop = 0.0;  // baseline overall accuracy - ablated overall accuracy
};
struct AblationResult {
    std::string mode;  // "zero" or "mean"
    std::vector<std::string> subjects;
    std::vector<Accuracy> baseline;
    Accuracy baseline_overall;
    std::vector<AblationRow> rows;  // ranked by drop, largest first (ties: lower dim)
};
// The ranked dims of each domain of a critical.json (`find --out`), in file order.
std::vector<std::pair<std::string, std::vector<int64_t>>> read_critical_dims(const std::string& path);
// |a ∩ b| / |a|: how much of the critical set the ablation's top |a| dims recover (0 for empty a).
double overlap(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// `scorer` must have the questions prepared.
AblationResult run_ablation(McqScorer& scorer, const std::vector<McqQuestion>& questions,
                            const std::vector<int64_t>& dims, const analysis::Stats* mean_stats,
                            const std::vector<int64_t>& magnitude_order, bool progress);

// ---------------------------------------------------------------------------------------------
// `reproduce`: the paper's protocol end to end (docs/eval.md lists every setting and every
// field of results.json). Each step writes its result file atomically under OUT/steps and is
// skipped when the file is there, so an interrupted run resumes where it stopped.

struct ReproduceOptions {
    std::string model_path, out_dir;
    std::string mmlu_dir, harmful, harmless, reference;  // data sets (the CLI fills them from --data)
    std::vector<std::string> subjects;                   // empty: every subject
    int64_t questions = 100;                             // sampled per subject
    double identify_share = 0.5;                         // of them used to identify (the rest evaluate)
    uint64_t seed = 0;
    std::vector<double> alphas = {0.25, 0.5, 1, 2, 4, 8};
    std::vector<int> k = {10};  // critical dimensions per subject; several values: a sweep
    double gap = 0.30;          // find's frequency-gap threshold (METHOD.md 7.5)
    // Steered blocks, each "middle", "all" (1 .. n_layer-1), a block "A" or a range "A-B"; several: a sweep.
    // The MMLU steering runs for every (k, layers) pair; each method takes its best (k, layers, alpha) on
    // the identification split. The jailbreak, coherence and masking parts use the first k and layers.
    std::vector<std::string> layers = {"middle"};
    int64_t advbench = 100;         // harmful prompts evaluated
    int64_t advbench_identify = 0;  // harmful prompts to identify (0: as many as advbench)
    int64_t max_tokens = 256;       // greedy tokens per jailbreak prompt
    // Prompts per jailbreak step (the unit a shard owns); a multiple of the generation group
    // (min(n_seq, 8)) gives the same completions as one list.
    int64_t advbench_chunk = 16;
    std::string rule = kDefaultRefusalRule;
    int64_t ppl_chunks = 4;  // reference-text chunks for perplexity and KL
    int64_t n_ctx = 0;       // 0: the model's training context
    std::vector<int64_t> ranks = {1, 10, 100};
    int64_t ablate_top = 10;  // also ablate the top N dims by magnitude (overlap)
    bool chat_mcq = false;    // MMLU prompts as chat turns (jailbreak prompts use the template when there is one)
    std::string chat_template;
    int n_seq = 16;
    int n_threads = 0;
    bool progress = false;
    bool estimate_only = false;
    // --shard I/N (n_shards > 0): compute only this shard's steps (MMLU subjects, AdvBench prompt
    // chunks, coherence and ablation steps, dealt round-robin in protocol order) into
    // OUT/shards/shard-I-of-N/ and mark it finished with its shard.json; no results.json.
    int shard = 0, n_shards = 0;
    // --merge: first gather every finished shard's steps into OUT/steps (refusing an incomplete
    // or mismatched set), then run as usual: the result equals one process's.
    bool merge = false;
};

struct ReproduceSummary {
    double estimate_seconds = 0.0, seconds = 0.0;
    int64_t steps_run = 0, steps_skipped = 0;
    std::string results_path, report_path;
};

// Prints the estimate and progress to stderr; writes OUT/results.json and OUT/report.html
// (sharded: OUT/shards/shard-I-of-N/shard.json, results_path names it).
ReproduceSummary reproduce(const ReproduceOptions& options);
// The folder of shard I of N under OUT, and the file that marks it finished.
std::string reproduce_shard_dir(const std::string& out_dir, int shard, int n_shards);
inline constexpr const char* kReproduceShardDone = "shard.json";
// Top-level results.json fields that hold wall-clock measurements, not results: a merged run
// differs from one process's only in these (docs/eval.md).
const std::vector<std::string>& reproduce_timing_fields();
// The self-contained HTML report (inline SVG plots, no network) of a results.json text.
std::string reproduce_report_html(const std::string& results_json);

}  // namespace critdim::eval
