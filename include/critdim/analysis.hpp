// critdim analysis: corpora, the scan statistics of the residual stream (accumulated in
// float64, stored as GGUF), their exact merge, and the critical-dimension criteria.
//
// The method's unknowns (../shared/METHOD.md section 7) are the named options of ScanOptions
// and FindOptions; docs/analysis.md lists them with their defaults, docs/formats.md the files.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "critdim/base.hpp"
#include "critdim/model.hpp"

namespace critdim::tokenizer {
class Tokenizer;
}

namespace critdim::analysis {

// ---------------------------------------------------------------------------------------------
// Corpora. A spec is `[FORMAT:]PATH`; without a format the path's kind and extension decide:
// a folder reads every regular file in it (sorted by name, recursively) by its own extension,
// `.jsonl` is jsonl, `.json` is instructions, `.csv` is mmlu, anything else is lines.

enum class CorpusFormat {
    automatic,
    lines,         // one document per non-blank line
    paragraphs,    // one document per run of non-blank lines (blank lines separate)
    file,          // the whole file is one document
    jsonl,         // one JSON object per line; the document is its `field` (a string)
    instructions,  // a JSON list of {"instruction": ...} objects (or of strings)
    mmlu,          // MMLU CSV, rendered as lm-eval-harness's zero-shot prompt
    csv,           // CSV with a header row; the document is the column named `field` (AdvBench: goal)
};

const char* corpus_format_name(CorpusFormat f);

struct CorpusSpec {
    std::string path;
    CorpusFormat format = CorpusFormat::automatic;
    std::string field = "text";  // jsonl: the member holding the document; csv: the column

    // "mmlu:data/test/anatomy_test.csv", "paragraphs:book.txt", "wiki.test.raw". A prefix that
    // is not a format name is part of the path.
    static CorpusSpec parse(std::string_view text);
    std::string to_string() const;
};

// Each of `texts` parsed, with `field` (jsonl member, csv column) set on all.
std::vector<CorpusSpec> parse_corpus_specs(const std::vector<std::string>& texts, const std::string& field);

struct Document {
    std::string text;
    std::string source;  // "FILE:LINE" where the document starts
    std::string label;   // mmlu: the answer letter; instructions: the category; else empty
};

// Reads every document of the spec, in order. Empty, unreadable or malformed corpora are
// Error(input) naming the file and line.
std::vector<Document> read_corpus(const CorpusSpec& spec);
// The header row of a CSV file (its first record); an empty file has none.
std::vector<std::string> csv_header(const std::string& path);

// MMLU: "The following are multiple choice questions (with answers) about {subject}.\n\n
// {question}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:" with the question stripped, as
// lm-eval-harness's `mmlu` task. The subject comes from the file name ("college_biology_test.csv"
// -> "college biology").
std::string render_mmlu(std::string_view subject, std::string_view question, const std::string (&choices)[4]);
std::string mmlu_subject_from_path(const std::string& path);

// The text a document is tokenized from. The default is the document's text; a chat template
// (tokenizer module) plugs in here.
using PromptFormatter = std::function<std::string(const Document&)>;

// ---------------------------------------------------------------------------------------------
// Scan statistics.

enum class PositionPolicy {
    all,      // every token
    content,  // every token but BOS and control/special tokens
    last,     // the last token of each prompt (METHOD.md 7.2 default: where MMLU's answer is read)
};
enum class SigmaAxis {
    vector,         // mean and std over the n_embd entries of each (site, token) vector (METHOD 7.3)
    vector_robust,  // the same with median and 1.4826 * MAD
    corpus,         // per dimension: mean and std of a reference stats file (--sigma-ref)
};

const char* position_policy_name(PositionPolicy p);
const char* sigma_axis_name(SigmaAxis a);
PositionPolicy parse_position_policy(std::string_view text);
SigmaAxis parse_sigma_axis(std::string_view text);

// Per hook site and dimension. Every array is [n_sites * n_embd], site-major.
struct SiteStats {
    std::vector<double> sum, sum_sq, sum_abs, max_abs;
    std::vector<float> max_value;             // signed value where |x| was largest
    std::vector<int64_t> max_doc;             // corpus index of that document (-1: none)
    std::vector<int32_t> max_pos, max_token;  // its position and token
    std::vector<int64_t> active_docs;         // documents where the dim was active (3-sigma)
    std::vector<int64_t> active_tokens;       // counted tokens where it was active
    std::vector<int64_t> massive_tokens;      // tokens (any position) where Sun et al.'s rule held
    std::vector<int64_t> massive_first;       // ... of them at position 0
    void resize(size_t n);
};

struct StatsHeader {
    int format_version = 1;
    std::string name;  // the domain
    std::string critdim_version = CRITDIM_VERSION;
    std::string model_path, model_hash, model_arch, model_type;
    int64_t n_embd = 0, n_layer = 0;
    std::vector<std::string> corpus;  // specs, in order
    std::string corpus_hash;          // of the documents' texts, before sharding
    int64_t corpus_docs = 0;          // documents in the whole corpus
    std::vector<std::string> shards;  // "i/n" each pass that contributed
    std::string policy, sigma_axis, sigma_ref_hash;
    std::string prompt_format;  // how documents became prompts: "" (as they are) or "chat:TEMPLATE [system:TEXT]"
    double sigma_k = 3.0;
    double massive_abs = 100.0, massive_ratio = 1000.0;
    int64_t n_ctx = 0;
    int64_t n_batch = 0, n_seq = 0;  // how documents were grouped into forward passes
    bool add_bos = true;
    bool complete = true;     // false in a checkpoint
    int64_t docs_done = 0;    // checkpoint: documents of this shard already counted
    int64_t n_docs = 0;       // documents counted
    int64_t n_truncated = 0;  // documents cut from the left to fit n_ctx
    int64_t n_tokens = 0;     // tokens run through the model
};

struct Stats {
    StatsHeader header;
    std::vector<std::string> sites;   // "resid_post.0", ...
    std::vector<std::string> points;  // distinct points of `sites`, in order ("resid_post")
    std::vector<int64_t> count;       // [n_sites] tokens counted at each site (by the policy)
    std::vector<int64_t> rows;        // [n_sites] tokens seen at each site (any position)
    SiteStats s;
    std::vector<int64_t> active_any;  // [n_points * n_embd] documents where the dim was active at
                                      // any layer of the point (METHOD 7.4)
    // scan --keep-rows: the stream at the last token of each document (the PCA steering
    // vectors need one row per prompt). kept_rows is [n_kept][n_sites][n_embd].
    std::vector<int64_t> kept_docs;  // corpus index of each kept document, in scan order
    std::vector<float> kept_rows;
    int64_t n_kept() const { return static_cast<int64_t>(kept_docs.size()); }
    const float* kept_row(int64_t k, size_t site) const {
        return kept_rows.data() + (static_cast<size_t>(k) * sites.size() + site) * static_cast<size_t>(header.n_embd);
    }

    int64_t n_embd() const { return header.n_embd; }
    size_t n_sites() const { return sites.size(); }
    size_t at(size_t site, int64_t dim) const {
        return site * static_cast<size_t>(header.n_embd) + static_cast<size_t>(dim);
    }
    void init(const std::vector<std::string>& site_names, int64_t n_embd);

    void write(const std::string& path) const;  // GGUF, atomically (docs/formats.md)
    static Stats read(const std::string& path);
};

// Adds b into a (documents, counts, sums, maxima, activity). Files must come from the same model,
// sites and options; Error(mismatch) otherwise, naming the field. Sums are added in call order
// (docs/formats.md: "summation order").
void merge_into(Stats& a, const Stats& b, const std::string& b_name);

// ---------------------------------------------------------------------------------------------
// The scan.

struct ScanOptions {
    std::vector<std::string> points = {"resid_post"};  // a point (every layer) or one site
    PositionPolicy policy = PositionPolicy::last;
    SigmaAxis sigma_axis = SigmaAxis::vector;
    double sigma_k = 3.0;
    std::string sigma_ref;  // stats file for SigmaAxis::corpus
    double massive_abs = 100.0, massive_ratio = 1000.0;
    int64_t n_ctx = 0;      // 0: the model's training context
    int64_t n_batch = 512;  // tokens per forward pass
    int n_seq = 0;          // documents per forward pass; 0: from n_batch and n_ctx
    int shard = 0, n_shards = 1;
    std::string name;
    bool add_bos = true;  // where the vocabulary adds one
    bool parse_special = false;
    int n_threads = 0;
    double checkpoint_seconds = 60.0;  // 0: none
    int64_t checkpoint_docs = 0;       // also after this many documents (0: off)
    bool progress = false;             // force the progress bar off a terminal
    bool statistics = true;            // false: the plain forward pass (benchmarks)
    bool keep_rows = false;            // also store each document's last-token row (Stats::kept_rows)
    PromptFormatter format;            // empty: the document's text
    std::string format_name;           // recorded in the stats file ("chat:model", ...); empty: plain text
};

struct ScanReport {
    int64_t n_docs = 0, n_tokens = 0, n_truncated = 0, resumed_from = 0;
    double seconds = 0.0;             // everything, loading included
    double forward_seconds = 0.0;     // the batches alone (forward passes and statistics)
    double statistics_seconds = 0.0;  // of which in the statistics observers
};

// Scans the documents of `corpus` (the specs' documents concatenated) and writes the stats file
// to `out`; a checkpoint `out + ".ckpt"` is written as it goes and resumed from when present
// and compatible. Nothing is ever written under `out` but the finished file.
ScanReport scan(const std::string& model_path, const std::vector<CorpusSpec>& corpus, const ScanOptions& options,
                const std::string& out);

// The shard's documents: the contiguous block [n * i / k, n * (i + 1) / k).
std::pair<int64_t, int64_t> shard_range(int64_t n_docs, int shard, int n_shards);
// "2/8" -> {2, 8}; a usage error otherwise.
std::pair<int, int> parse_shard(std::string_view text);

std::string hash_file(const std::string& path);  // "xxh3_64:<16 hex digits>"

// ---------------------------------------------------------------------------------------------
// Finding the critical dimensions.

// A finished stats file given as "[NAME=]FILE" (find --domain/--vs): NAME replaces the domain
// name recorded in the file. Returns (FILE, stats); a checkpoint is Error(input).
std::pair<std::string, Stats> read_domain_stats(const std::string& arg);

enum class Criterion { paper, massive, ratio };
const char* criterion_name(Criterion c);
Criterion parse_criterion(std::string_view text);

struct FindOptions {
    Criterion criterion = Criterion::paper;
    int k = 10;
    double gap = 0.30;          // paper: |freq(domain) - freq(rest)| at least this
    bool gap_positive = false;  // paper: only dims more active in the domain
    bool pairwise = false;      // paper: the gap must hold against every other file, not the pool
    std::string point = "resid_post";
    bool layer_mean = false;  // magnitude over layers: max (default) or mean
    double min_ratio = 1.5;   // ratio: a layer is listed where the ratio is at least this
};

struct DimScore {
    int64_t dim = 0;
    double score = 0.0;  // what the criterion ranks by
    double freq_domain = 0.0, freq_rest = 0.0, gap = 0.0;
    double mean_abs_domain = 0.0, mean_abs_rest = 0.0, ratio = 0.0;
    double max_abs = 0.0;
    int64_t massive_tokens = 0, massive_first = 0;
    int32_t max_token = -1, max_pos = -1;
    int64_t max_doc = -1;
    std::vector<int> layers;  // where the criterion holds
};

struct DomainResult {
    std::string name, stats_path;
    int64_t n_docs = 0;
    int64_t n_candidates = 0;
    std::vector<DimScore> dims;  // ranked, at most k
};

// Each domain against all the other files (other domains and `others`).
std::vector<DomainResult> find_critical(const std::vector<std::pair<std::string, Stats>>& domains,
                                        const std::vector<std::pair<std::string, Stats>>& others,
                                        const FindOptions& options);

// critical.json (docs/formats.md) and the table `find` prints.
std::string critical_json(const std::vector<DomainResult>& results, const FindOptions& options, const Stats& any);
std::string critical_table(const std::vector<DomainResult>& results, const FindOptions& options);

// critical.json read back: the one reader `vector`, `explain`, the evaluation plans and the
// playground share. Error(input) names the file and the field; with n_embd > 0, a dimension
// outside the model is Error(mismatch).
struct CriticalDim {
    int64_t dim = 0;
    int rank = 0;
    double score = 0.0;
    std::vector<int> layers;  // where the criterion held
};
struct CriticalDomain {
    std::string name;  // "domain I" where the file gives none
    std::vector<CriticalDim> dims;
    std::vector<int64_t> dim_ids() const;  // in file order
};
struct CriticalFile {
    int version = 0;         // 0: not given
    std::string point;       // parameters.point ("" when not given)
    std::string model_hash;  // model.hash ("" when not given)
    std::vector<CriticalDomain> domains;
};
// Every domain's dimensions, ascending, once each.
std::vector<int64_t> distinct_dims(const std::vector<CriticalDomain>& domains);
CriticalFile parse_critical(const std::string& text, const std::string& where, int64_t n_embd = 0);
CriticalFile read_critical(const std::string& path, int64_t n_embd = 0);

// ---------------------------------------------------------------------------------------------
// Explaining them: top activating tokens with context, mean |x| by token class, and a layer x
// dimension heatmap, over a corpus (documents cut to n_ctx). JSON (format critdim.explain) and
// a self-contained HTML rendering of it (inline SVG, no network).
std::string explain_json(const std::string& model_path, const std::string& critical_path,
                         const std::vector<CorpusSpec>& corpus, int top, int64_t n_ctx, int n_threads);
std::string explain_html(const std::string& json_text);

}  // namespace critdim::analysis
