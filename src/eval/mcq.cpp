// Multiple choice as lm-eval-harness scores MMLU: the log-likelihood of each continuation
// " A" .. " D" after the zero-shot prompt; several questions share a forward pass.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>

#include "critdim/analysis.hpp"
#include "critdim/eval.hpp"

namespace fs = std::filesystem;

namespace critdim::eval {

Accuracy wilson(int64_t correct, int64_t n, double z) {
    Accuracy a;
    a.n = n, a.correct = correct;
    if (n == 0) return a;
    const double nn = static_cast<double>(n), p = static_cast<double>(correct) / nn, z2 = z * z;
    a.acc = p;
    const double denom = 1.0 + z2 / nn;
    const double center = (p + z2 / (2.0 * nn)) / denom;
    const double half = z * std::sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom;
    a.ci_low = std::max(0.0, center - half);
    a.ci_high = std::min(1.0, center + half);
    return a;
}

std::vector<std::string> mmlu_subjects(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw_io(dir, "not a folder (expected an MMLU data folder)");
    const fs::path test = fs::path(dir) / "test";
    const fs::path base = fs::is_directory(test, ec) ? test : fs::path(dir);
    std::vector<std::string> subjects;
    for (const auto& e : fs::directory_iterator(base, ec)) {
        if (!e.is_regular_file() || e.path().extension() != ".csv") continue;
        std::string stem = e.path().stem().string();
        if (stem.size() > 5 && stem.ends_with("_test")) stem.resize(stem.size() - 5);
        subjects.push_back(stem);
    }
    if (ec) throw_io(base.string(), ec.message());
    std::sort(subjects.begin(), subjects.end());
    if (subjects.empty()) throw_input(base.string(), "no MMLU subject files (*_test.csv)");
    return subjects;
}

std::string mmlu_subject_file(const std::string& dir, const std::string& subject) {
    std::error_code ec;
    for (const fs::path& p : {fs::path(dir) / "test" / (subject + "_test.csv"), fs::path(dir) / (subject + "_test.csv"),
                              fs::path(dir) / (subject + ".csv")})
        if (fs::is_regular_file(p, ec)) return p.string();
    throw_input(dir, "no file for subject '" + subject + "' (looked for test/" + subject + "_test.csv, " + subject +
                         "_test.csv and " + subject + ".csv)");
}

std::vector<McqQuestion> read_mmlu_questions(const std::string& file, const std::string& subject) {
    analysis::CorpusSpec spec;
    spec.path = file;
    spec.format = analysis::CorpusFormat::mmlu;
    std::vector<McqQuestion> out;
    for (analysis::Document& d : analysis::read_corpus(spec))
        out.push_back({subject, std::move(d.text), d.label[0] - 'A', std::move(d.source), {}});
    return out;
}

std::vector<size_t> sample_indices(size_t count, size_t n, uint64_t seed) {
    std::vector<size_t> idx(count);
    for (size_t i = 0; i < count; ++i) idx[i] = i;
    // Fisher-Yates with the raw 64-bit generator: std::shuffle's distribution is not portable.
    std::mt19937_64 rng(seed);
    for (size_t i = count; i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    idx.resize(std::min(n, count));
    return idx;
}

std::vector<McqQuestion> load_mmlu(const std::string& dir, std::vector<std::string> subjects, int64_t n, int64_t seed) {
    if (subjects.empty()) subjects = mmlu_subjects(dir);
    std::vector<McqQuestion> qs;
    for (const std::string& s : subjects) {
        std::vector<McqQuestion> all = read_mmlu_questions(mmlu_subject_file(dir, s), s);
        if (n > 0 && seed >= 0) {
            for (size_t i : sample_indices(all.size(), static_cast<size_t>(n), static_cast<uint64_t>(seed)))
                qs.push_back(all[i]);
            continue;
        }
        if (n > 0 && static_cast<size_t>(n) < all.size()) all.resize(static_cast<size_t>(n));
        qs.insert(qs.end(), all.begin(), all.end());
    }
    return qs;
}

namespace {

// log p(token) from a row of logits, in double.
double log_prob(const float* logits, int64_t n_vocab, int32_t token) {
    float max = logits[0];
    for (int64_t i = 1; i < n_vocab; ++i) max = std::max(max, logits[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
    return static_cast<double>(logits[token] - max) - std::log(sum);
}

struct Prepared {
    std::vector<int32_t> context;
    std::vector<int32_t> cont[4];
    bool truncated = false;
};

// One sequence of a pass: the tokens run, and where its scored rows go.
struct Sequence {
    size_t question = 0;
    int choice = -1;  // -1: all four from the last row (single-token case)
};

}  // namespace

struct McqScorer::Impl {
    const model::Model& model;
    const tokenizer::Tokenizer& tok;
    McqOptions options;
    int64_t n_ctx = 0;
    std::unique_ptr<model::Context> ctx;
    std::vector<Prepared> prepared;
    bool single = true;
    int64_t n_forward = 0;

    std::function<std::string(const std::string&)> chat;  // the template, parsed once

    Impl(const model::Model& m, const tokenizer::Tokenizer& t, const McqOptions& o) : model(m), tok(t), options(o) {
        if (o.chat) chat = tokenizer::user_prompt_renderer(t, m.path(), o.system, o.chat_template);
        n_ctx = o.n_ctx > 0 ? o.n_ctx : m.hparams().n_ctx_train;
        model::ContextParams cp;
        cp.n_ctx = n_ctx;
        cp.n_seq = std::max(1, o.n_seq);
        cp.n_batch = std::max<int64_t>(o.n_batch, n_ctx);
        cp.n_threads = o.n_threads;
        ctx = std::make_unique<model::Context>(m, cp);
    }

    std::vector<int32_t> encode(const std::string& text) const {
        return options.chat ? tok.encode(text, false, true) : tok.encode(text, true, false);
    }

    Prepared prepare_one(const McqQuestion& q) const {
        const std::string text = options.chat ? chat(q.prompt) : q.prompt;
        Prepared p;
        p.context = encode(text);
        // lm-eval: continuation = encode(context + " A")[len(encode(context)):]
        for (int c = 0; c < 4; ++c) {
            if (!q.continuations.empty() && q.continuations.size() != 4)
                throw_input(q.source, "expected 4 continuations, found " + std::to_string(q.continuations.size()));
            const std::string cont =
                q.continuations.empty() ? " " + std::string(1, char('A' + c)) : q.continuations[static_cast<size_t>(c)];
            const std::vector<int32_t> whole = encode(text + cont);
            const size_t k = std::min(p.context.size(), whole.size());
            p.cont[c].assign(whole.begin() + static_cast<std::ptrdiff_t>(k), whole.end());
            if (p.cont[c].empty()) throw_input(q.source, "the answer letter adds no token to the prompt");
        }
        size_t longest = 0;
        for (const auto& c : p.cont) longest = std::max(longest, c.size());
        const int64_t need = static_cast<int64_t>(p.context.size() + longest - 1);
        if (need > n_ctx) {
            // Cut from the left, keeping a leading BOS.
            const bool keep_bos = !p.context.empty() && p.context[0] == tok.bos_id() && tok.bos_id() >= 0;
            const size_t drop = static_cast<size_t>(need - n_ctx);
            if (drop + (keep_bos ? 1 : 0) + 1 > p.context.size())
                throw_input(q.source, "the answer continuation alone does not fit the context of " +
                                          std::to_string(n_ctx) + " tokens");
            p.context.erase(p.context.begin() + (keep_bos ? 1 : 0),
                            p.context.begin() + (keep_bos ? 1 : 0) + static_cast<std::ptrdiff_t>(drop));
            p.truncated = true;
        }
        return p;
    }

    size_t seq_tokens(const Sequence& s) const {
        const Prepared& p = prepared[s.question];
        return p.context.size() + (s.choice < 0 ? 0 : p.cont[s.choice].size() - 1);
    }
};

McqScorer::McqScorer(const model::Model& model, const tokenizer::Tokenizer& tok, const McqOptions& options)
    : impl_(std::make_unique<Impl>(model, tok, options)) {}
McqScorer::~McqScorer() = default;
model::Context& McqScorer::context() { return *impl_->ctx; }

void McqScorer::prepare(const std::vector<McqQuestion>& questions) {
    impl_->prepared.clear();
    impl_->single = true;
    for (const McqQuestion& q : questions) {
        impl_->prepared.push_back(impl_->prepare_one(q));
        for (const auto& c : impl_->prepared.back().cont) impl_->single = impl_->single && c.size() == 1;
    }
}

bool McqScorer::single_token() const { return impl_->single; }

std::vector<std::vector<std::string>> McqScorer::letter_pieces() const {
    std::vector<std::vector<std::string>> out;
    if (impl_->prepared.empty()) return out;
    for (const auto& c : impl_->prepared[0].cont) {
        out.emplace_back();
        for (int32_t id : c) out.back().push_back(impl_->tok.token_text(id));
    }
    return out;
}

int64_t McqScorer::n_truncated() const {
    return std::count_if(impl_->prepared.begin(), impl_->prepared.end(), [](const Prepared& p) { return p.truncated; });
}

int64_t McqScorer::n_forward() const { return impl_->n_forward; }

int64_t McqScorer::tokens_per_pass() const {
    int64_t n = 0;
    for (const Prepared& p : impl_->prepared) {
        if (impl_->single)
            n += static_cast<int64_t>(p.context.size());
        else
            for (const auto& c : p.cont) n += static_cast<int64_t>(p.context.size() + c.size() - 1);
    }
    return n;
}

std::vector<McqScore> McqScorer::score() {
    Impl& m = *impl_;
    const int64_t n_vocab = m.model.hparams().n_vocab;
    std::vector<Sequence> seqs;
    for (size_t q = 0; q < m.prepared.size(); ++q) {
        if (m.single)
            seqs.push_back({q, -1});
        else
            for (int c = 0; c < 4; ++c) seqs.push_back({q, c});
    }
    std::vector<McqScore> scores(m.prepared.size());
    for (size_t q = 0; q < m.prepared.size(); ++q) scores[q].truncated = m.prepared[q].truncated;
    Progress progress("mmlu", static_cast<int64_t>(m.prepared.size()), "questions", m.options.progress);
    const int n_seq = std::max(1, m.options.n_seq);
    size_t next = 0;
    while (next < seqs.size()) {
        // Pack sequences while they fit n_seq and n_batch (one always goes in).
        size_t end = next, tokens = 0;
        while (end < seqs.size() && end - next < static_cast<size_t>(n_seq)) {
            const size_t t = m.seq_tokens(seqs[end]);
            if (end > next && tokens + t > static_cast<size_t>(m.options.n_batch)) break;
            tokens += t;
            ++end;
        }
        model::Batch batch;
        for (size_t s = next; s < end; ++s) {
            const Prepared& p = m.prepared[seqs[s].question];
            const int c = seqs[s].choice;
            const size_t n_ctx_tok = p.context.size();
            const size_t n = m.seq_tokens(seqs[s]);
            for (size_t i = 0; i < n; ++i) {
                const int32_t id = i < n_ctx_tok ? p.context[i] : p.cont[c][i - n_ctx_tok];
                batch.add(id, static_cast<int32_t>(i), static_cast<int32_t>(s - next), i + 1 >= n_ctx_tok);
            }
        }
        m.ctx->clear();
        m.ctx->decode(batch);
        ++m.n_forward;
        int64_t row = 0;
        for (size_t s = next; s < end; ++s) {
            const Sequence& sq = seqs[s];
            const Prepared& p = m.prepared[sq.question];
            McqScore& sc = scores[sq.question];
            if (sq.choice < 0) {
                const float* logits = m.ctx->logits(row++);
                for (int c = 0; c < 4; ++c) sc.loglik[c] = log_prob(logits, n_vocab, p.cont[c][0]);
            } else {
                double sum = 0.0;
                for (int32_t id : p.cont[sq.choice]) sum += log_prob(m.ctx->logits(row++), n_vocab, id);
                sc.loglik[sq.choice] = sum;
            }
        }
        next = end;
        progress.update(static_cast<int64_t>(m.single ? next : next / 4));
    }
    progress.finish();
    for (McqScore& sc : scores) sc.predicted = static_cast<int>(std::max_element(sc.loglik, sc.loglik + 4) - sc.loglik);
    return scores;
}

std::vector<SubjectAccuracy> accuracy_by_subject(const std::vector<McqQuestion>& questions,
                                                 const std::vector<McqScore>& scores) {
    std::vector<SubjectAccuracy> out;
    std::vector<int64_t> correct;
    for (size_t i = 0; i < questions.size(); ++i) {
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const SubjectAccuracy& s) { return s.subject == questions[i].subject; });
        if (it == out.end()) {
            out.push_back({questions[i].subject, {}});
            correct.push_back(0);
            it = out.end() - 1;
        }
        const size_t k = static_cast<size_t>(it - out.begin());
        ++out[k].accuracy.n;
        correct[k] += scores[i].predicted == questions[i].answer;
    }
    for (size_t k = 0; k < out.size(); ++k) out[k].accuracy = wilson(correct[k], out[k].accuracy.n);
    return out;
}

}  // namespace critdim::eval
