// critdim steer: steering plans (JSON), their application as interventions on the residual
// stream, and llama.cpp control-vector import/export (docs/steering.md).
//
// A plan is a list of interventions, each: a hook point and layers, dimensions (a list or
// all), an operation (add, set, scale, clamp, zero, mean), values, a coefficient alpha and a
// position policy. Loading parses and checks everything that does not depend on the model;
// Steering checks the rest against one model and precomputes one vector per site, so that
// applying a plan costs a few vector operations per row and site, no pass over the weights.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "critdim/base.hpp"
#include "critdim/model.hpp"

namespace critdim::steer {

inline constexpr const char* kPlanFormat = "critdim-steering-plan";
inline constexpr int kPlanVersion = 1;

// x is the stream value of one selected dimension, v the intervention's value for it, a alpha.
// alpha = 0 leaves the stream unchanged for every operation; alpha = 1 is the full effect.
enum class Op {
    add,    // x + a*v
    set,    // (1-a)*x + a*v            (a = 1: exactly v)
    scale,  // x * ((1-a) + a*v)        (a = 1: exactly x*v)
    clamp,  // (1-a)*x + a*clamp(x, min, max)
    zero,   // (1-a)*x                  (a = 1: exactly 0)
    mean,   // as set; v holds the dimension's mean activation (mean ablation, Sun et al.)
};
const char* op_name(Op op);

enum class Positions {
    all,        // every row
    prompt,     // rows before the sequence's prompt length (every row when it is not known)
    generated,  // rows at or after the prompt length (none when it is not known)
    skip_bos,   // every row except position 0
    from,       // rows at position >= from
};

struct PositionPolicy {
    Positions kind = Positions::all;
    int64_t from = 0;  // for Positions::from
    bool operator==(const PositionPolicy&) const = default;
};
std::string position_policy_name(const PositionPolicy& p);  // "all", "prompt", "from 5", ...

// Values for the selected dimensions: one row shared by every layer, or one row per layer
// (in the order of `layers`). Row length: the number of dims, or n_embd for "all".
struct Values {
    std::vector<float> data;
    int64_t n_rows = 0;
    int64_t n_cols = 0;
    bool empty() const { return n_rows == 0; }
    const float* row(int64_t layer_index) const { return data.data() + (n_rows == 1 ? 0 : layer_index) * n_cols; }
};

enum class BeyondModel { error, ignore };

struct Intervention {
    std::string where;  // "plan.json: interventions[2]", for messages
    model::HookPoint point = model::HookPoint::resid_post;
    bool all_layers = false;
    std::vector<int> layers;  // when !all_layers; ascending order not required, no repeats
    bool all_dims = true;
    std::vector<int64_t> dims;  // when !all_dims; no repeats
    Op op = Op::add;
    Values values;    // add, set, scale, mean
    Values min, max;  // clamp (either may be empty)
    double alpha = 1.0;
    PositionPolicy positions;
    BeyondModel beyond_model = BeyondModel::error;  // layers >= n_layer: refuse, or drop (llama.cpp)
};

struct ModelCheck {
    std::optional<std::string> arch;
    std::optional<int64_t> n_embd, n_layer;
};

struct Plan {
    std::string source;  // the file name, or a label
    ModelCheck model;
    double alpha = 1.0;  // multiplies every intervention's alpha; --alpha replaces it
    std::vector<Intervention> interventions;
    std::string comment;
    std::string provenance_json;  // free object ("{}" when absent), kept on save
};

// Parses and checks a plan file; value files are found relative to the plan's folder.
// Errors: Error(input) "FILE: FIELD.PATH: WHAT".
Plan load_plan(const std::string& path);
Plan parse_plan(const std::string& json_text, const std::string& source, const std::string& base_dir);
// Inline values, formatted so that reading them back gives the same float32 bits.
std::string plan_to_json(const Plan& plan);
void save_plan(const Plan& plan, const std::string& path);

// ---------------------------------------------------------------------------------------------
// Application.

// One or more plans compiled for one model, in order. Construction validates each plan
// against the model (Error(mismatch) naming the plan, field and model fact) and precomputes
// the per-site vectors; attach() registers one intervention per steered site.
class Steering {
public:
    struct Options {
        std::optional<double> alpha;  // replaces each plan's top-level alpha
    };
    Steering(const model::Model& model, std::span<const Plan> plans, const Options& options);
    Steering(const model::Model& model, std::span<const Plan> plans) : Steering(model, plans, Options{}) {}
    ~Steering();
    Steering(Steering&&) noexcept;
    Steering& operator=(Steering&&) noexcept;

    void attach(model::Context& ctx);
    void detach(model::Context& ctx);

    // Rows of sequence `seq` at positions < n are prompt rows, later ones generated rows.
    // Unset: every row is a prompt row (dump, ppl). Read at every forward pass.
    void set_prompt_length(int32_t seq, int64_t n);
    void clear_prompt_lengths();

    // Steers only the rows of these sequences and leaves every other row of the batch as it
    // is (empty, the default: every row), so that sequences decoded in one batch can each
    // carry their own plan (critdim serve). Read at every forward pass.
    void set_sequences(std::vector<int32_t> seqs);

    int n_sites() const;  // sites with at least one step
    // The per-site steps in the order they run, e.g. "resid_post.3: add dims all positions all".
    std::vector<std::string> describe() const;
    // Non-fatal notes (e.g. layers beyond the model dropped as llama.cpp does).
    const std::vector<std::string>& notes() const;

private:
    struct State;
    std::shared_ptr<State> state_;
    std::vector<model::HookId> hook_ids_;
};

// ---------------------------------------------------------------------------------------------
// Steering vectors from scan statistics (`critdim vector`, docs/steering.md).

enum class VectorMethod {
    mean,  // per layer: mean(pos) - mean(neg) over the counted tokens (difference of means)
    pca,   // per layer: first principal direction of the paired row differences (scan --keep-rows)
};
enum class VectorNorm {
    none,         // the masked vector as it is
    match_whole,  // the masked vector scaled to the whole vector's norm, layer by layer (equal budget)
    unit,         // every layer's vector scaled to norm 1
};

// "mean" or "pca"; "match-whole", "unit" or "none". Anything else is Error(usage) naming
// --method / --norm (the command's options; the Python module's keywords of the same name).
VectorMethod parse_vector_method(std::string_view text);
VectorNorm parse_vector_norm(std::string_view text);

struct VectorOptions {
    std::string pos, neg;       // stats files (analysis::Stats) of the two corpora
    std::string dims_path;      // critical.json: mask to its dimensions (CDS); empty: whole vector
    std::string domain;         // which domain of critical.json; empty: the only one, or pos's name
    std::vector<int64_t> dims;  // an explicit mask instead of dims_path
    std::string point = "resid_post";
    int layer_first = 0, layer_last = -1;  // inclusive; -1: the last layer
    VectorMethod method = VectorMethod::mean;
    VectorNorm norm = VectorNorm::match_whole;
    bool center = false;  // pca: subtract the mean difference first (repeng) rather than not (llama.cpp)
    double alpha = 1.0;
    PositionPolicy positions;
};

struct VectorLayer {
    int layer = 0;
    double whole_norm = 0.0;   // norm of the unmasked vector
    double masked_norm = 0.0;  // norm of the masked vector before scaling
    double scale = 1.0;        // what --norm multiplied it by
};

// One `add` intervention at `point` of each chosen layer, values per layer. Deterministic:
// the same files and options give the same plan, byte for byte. Errors name the file and field.
Plan build_vector_plan(const VectorOptions& options, std::vector<VectorLayer>* layers = nullptr);

// ---------------------------------------------------------------------------------------------
// llama.cpp control vectors. `direction.k` (k >= 1) is added, times its scale, to the output of
// block k: resid_post.k. Block 0 cannot be addressed (docs/steering.md).

struct CvectorImportOptions {
    double scale = 1.0;       // llama.cpp --control-vector-scaled FILE SCALE
    int64_t layer_start = 0;  // --control-vector-layer-range A B; A <= 0 counts as 1
    int64_t layer_end = 0;    // B <= 0: up to the model's last block
};

// One `add` intervention at resid_post.k per direction.k, in file order, with alpha = the
// file's scale; layers >= n_layer are ignored when the plan is applied. Several files sum
// (llama.cpp sums files and the directions of one block in that order). The plan's top-level
// alpha is 1, so --alpha X multiplies every scale.
struct CvectorFile {
    std::string path;
    double scale = 1.0;
};
Plan import_cvectors(std::span<const CvectorFile> files, int64_t layer_start, int64_t layer_end);
Plan import_cvector(const std::string& path, const CvectorImportOptions& options = {});

struct CvectorExport {
    std::string model_hint;
    int64_t n_embd = 0;
    int64_t layer_count = 0;
    std::vector<std::pair<int, std::vector<float>>> directions;  // (k, alpha-folded sum), k ascending
};

// The plan as directions, refusing what a control vector cannot express. `model` may be null
// when the plan itself says n_embd (and n_layer if it uses "all" layers).
CvectorExport plan_to_cvector(const Plan& plan, const model::Model* model);
void write_cvector(const CvectorExport& cv, const std::string& path);

}  // namespace critdim::steer
