// The scan: tokenizes the shard's documents, runs them through the model several at a time
// (one sequence each), folds every hook site's rows into Stats, checkpoints as it goes and
// writes the stats file atomically.
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "analysis/accumulator.hpp"
#include "critdim/tokenizer.hpp"

namespace fs = std::filesystem;

namespace critdim::analysis {

namespace {

struct NameOf {
    int value;
    const char* name;
};
constexpr NameOf kPolicies[] = {
    {int(PositionPolicy::all), "all"}, {int(PositionPolicy::content), "content"}, {int(PositionPolicy::last), "last"}};
constexpr NameOf kAxes[] = {{int(SigmaAxis::vector), "vector"},
                            {int(SigmaAxis::vector_robust), "vector-robust"},
                            {int(SigmaAxis::corpus), "corpus"}};

template <size_t N>
int parse_name(const NameOf (&table)[N], std::string_view text, const char* option) {
    std::string names;
    for (const auto& t : table) {
        if (text == t.name) return t.value;
        names += (names.empty() ? "" : ", ") + std::string(t.name);
    }
    throw_usage(std::string(option) + ": '" + std::string(text) + "' is not one of " + names);
}

std::string hex64(uint64_t h) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

// Every site of the points asked for: "resid_post" is every layer, "resid_post.3" one site.
std::vector<std::string> expand_sites(const std::vector<std::string>& points, int64_t n_layer) {
    std::vector<std::string> sites;
    for (const std::string& p : points) {
        if (p.find('.') != std::string::npos || p == "embed" || p == "final_norm") {
            const model::HookSite s = model::HookSite::parse(p);
            if (s.layer >= n_layer)
                throw_usage("--points: '" + p + "' is beyond the model's " + std::to_string(n_layer) + " layers");
            sites.push_back(s.name());
            continue;
        }
        const model::HookSite probe = model::HookSite::parse(p + ".0");
        for (int l = 0; l < n_layer; ++l) sites.push_back(model::HookSite{probe.point, l}.name());
    }
    for (size_t i = 0; i < sites.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (sites[i] == sites[j]) throw_usage("--points: site '" + sites[i] + "' is named twice");
    return sites;
}

std::string corpus_hash(const std::vector<Document>& docs) {
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    for (const Document& d : docs) {
        const uint64_t n = d.text.size();
        XXH3_64bits_update(state, &n, sizeof n);
        XXH3_64bits_update(state, d.text.data(), d.text.size());
    }
    const uint64_t h = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    return "xxh3_64:" + hex64(h);
}

// The fields a checkpoint must share with the scan that resumes it.
void check_resumable(const Stats& ck, const StatsHeader& want, const std::vector<std::string>& sites,
                     const std::string& path) {
    auto need = [&](const char* field, const auto& a, const auto& b) {
        if (a != b)
            throw Error(ErrorKind::mismatch, path,
                        std::string(field) + " differs from this scan's; delete the checkpoint to start over");
    };
    need("model.hash", ck.header.model_hash, want.model_hash);
    need("corpus.hash", ck.header.corpus_hash, want.corpus_hash);
    need("shards", ck.header.shards, want.shards);
    need("sites", ck.sites, sites);
    need("policy", ck.header.policy, want.policy);
    need("prompt_format", ck.header.prompt_format, want.prompt_format);
    need("sigma.axis", ck.header.sigma_axis, want.sigma_axis);
    need("sigma.k", ck.header.sigma_k, want.sigma_k);
    need("sigma.ref_hash", ck.header.sigma_ref_hash, want.sigma_ref_hash);
    need("massive.abs", ck.header.massive_abs, want.massive_abs);
    need("massive.ratio", ck.header.massive_ratio, want.massive_ratio);
    need("n_ctx", ck.header.n_ctx, want.n_ctx);
    need("n_batch", ck.header.n_batch, want.n_batch);
    need("n_seq", ck.header.n_seq, want.n_seq);
    need("add_bos", ck.header.add_bos, want.add_bos);
    if (ck.header.complete) throw_input(path, "is a finished stats file, not a checkpoint");
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const char* position_policy_name(PositionPolicy p) { return kPolicies[static_cast<int>(p)].name; }
const char* sigma_axis_name(SigmaAxis a) { return kAxes[static_cast<int>(a)].name; }
PositionPolicy parse_position_policy(std::string_view text) {
    return static_cast<PositionPolicy>(parse_name(kPolicies, text, "--policy"));
}
SigmaAxis parse_sigma_axis(std::string_view text) {
    return static_cast<SigmaAxis>(parse_name(kAxes, text, "--sigma-axis"));
}

std::pair<int64_t, int64_t> shard_range(int64_t n_docs, int shard, int n_shards) {
    return {n_docs * shard / n_shards, n_docs * (shard + 1) / n_shards};
}

std::pair<int, int> parse_shard(std::string_view text) {
    const size_t slash = text.find('/');
    int i = -1, n = -1;
    try {
        if (slash == std::string_view::npos) throw std::invalid_argument("");
        size_t used = 0;
        const std::string a(text.substr(0, slash)), b(text.substr(slash + 1));
        i = std::stoi(a, &used);
        if (used != a.size()) throw std::invalid_argument("");
        n = std::stoi(b, &used);
        if (used != b.size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
        throw_usage("--shard: '" + std::string(text) + "' is not I/N");
    }
    if (n < 1 || i < 0 || i >= n) throw_usage("--shard: '" + std::string(text) + "' needs 0 <= I < N");
    return {i, n};
}

std::string hash_file(const std::string& path) {
    const MappedFile f(path);
    return "xxh3_64:" + hex64(XXH3_64bits(f.data(), f.size()));
}

ScanReport scan(const std::string& model_path, const std::vector<CorpusSpec>& corpus, const ScanOptions& opt,
                const std::string& out) {
    const double t0 = now_seconds();
    if (corpus.empty()) throw_usage("scan: no --corpus given");
    if (opt.n_shards < 1 || opt.shard < 0 || opt.shard >= opt.n_shards) throw_usage("--shard: out of range");
    if (opt.sigma_axis == SigmaAxis::corpus && opt.sigma_ref.empty())
        throw_usage("--sigma-axis corpus needs --sigma-ref STATS (the per-dimension mean and std)");

    std::vector<Document> docs;
    for (const CorpusSpec& spec : corpus) {
        std::vector<Document> part = read_corpus(spec);
        docs.insert(docs.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    }

    const auto m = model::Model::load(model_path);
    const model::HParams& hp = m->hparams();
    const auto tok = tokenizer::Tokenizer::from_gguf(m->file());

    // The header: provenance and options.
    Stats stats;
    StatsHeader& h = stats.header;
    h.name = opt.name;
    if (h.name.empty()) {  // the first corpus file's (or folder's) stem
        fs::path p = fs::path(corpus.front().path).lexically_normal();
        if (p.filename().empty()) p = p.parent_path();
        h.name = p.stem().empty() ? "corpus" : p.stem().string();
    }
    h.model_path = model_path;
    h.model_hash = hash_file(model_path);
    h.model_arch = hp.arch;
    h.model_type = tensor_type_name(m->weights().layers.at(0).ffn_down.type);
    h.n_layer = hp.n_layer;
    for (const CorpusSpec& spec : corpus) h.corpus.push_back(spec.to_string());
    h.corpus_hash = corpus_hash(docs);
    h.corpus_docs = static_cast<int64_t>(docs.size());
    h.shards = {std::to_string(opt.shard) + "/" + std::to_string(opt.n_shards)};
    h.policy = position_policy_name(opt.policy);
    h.prompt_format = opt.format_name;
    h.sigma_axis = sigma_axis_name(opt.sigma_axis);
    h.sigma_k = opt.sigma_k;
    h.massive_abs = opt.massive_abs;
    h.massive_ratio = opt.massive_ratio;
    h.add_bos = opt.add_bos;
    const std::vector<std::string> sites = expand_sites(opt.points, hp.n_layer);
    stats.init(sites, hp.n_embd);

    std::unique_ptr<Stats> sigma_ref;
    if (opt.sigma_axis == SigmaAxis::corpus) {
        sigma_ref = std::make_unique<Stats>(Stats::read(opt.sigma_ref));
        if (sigma_ref->sites != sites || sigma_ref->n_embd() != hp.n_embd)
            throw Error(ErrorKind::mismatch, opt.sigma_ref, "sites or n_embd differ from this scan's");
        h.sigma_ref_hash = hash_file(opt.sigma_ref);
    }

    // Tokenize the shard: BOS where the vocabulary adds one; a document longer than the
    // context keeps its BOS and its last tokens (cut from the left).
    const auto [first_doc, end_doc] = shard_range(static_cast<int64_t>(docs.size()), opt.shard, opt.n_shards);
    const int64_t ctx_limit = opt.n_ctx > 0 ? opt.n_ctx : hp.n_ctx_train;
    if (ctx_limit < 2) throw_usage("--ctx must be at least 2");
    const bool bos = opt.add_bos && tok->adds_bos() && tok->bos_id() >= 0;
    std::vector<std::vector<int32_t>> ids(static_cast<size_t>(end_doc - first_doc));
    int64_t longest = 1, total_tokens = 0;
    for (int64_t i = first_doc; i < end_doc; ++i) {
        const Document& d = docs[static_cast<size_t>(i)];
        std::vector<int32_t>& v = ids[static_cast<size_t>(i - first_doc)];
        v = tok->encode(opt.format ? opt.format(d) : d.text, bos, opt.parse_special);
        if (static_cast<int64_t>(v.size()) > ctx_limit) {
            const int64_t keep_front = bos && v.front() == tok->bos_id() ? 1 : 0;
            v.erase(v.begin() + keep_front, v.end() - (ctx_limit - keep_front));
            ++h.n_truncated;
        }
        longest = std::max<int64_t>(longest, static_cast<int64_t>(v.size()));
        total_tokens += static_cast<int64_t>(v.size());
    }
    if (h.n_truncated > 0)
        std::fprintf(
            stderr,
            "critdim: warning: %lld documents were longer than the context of %lld tokens and were cut from the left\n",
            static_cast<long long>(h.n_truncated), static_cast<long long>(ctx_limit));

    // Grouping: n_seq documents share a forward pass of at most n_batch tokens (a longer
    // document goes alone). The grouping is recorded so that a resumed scan repeats it.
    const int64_t n_ctx = std::min(ctx_limit, longest);
    const int n_seq = opt.n_seq > 0 ? opt.n_seq : static_cast<int>(std::clamp<int64_t>(2 * opt.n_batch / n_ctx, 1, 16));
    h.n_ctx = ctx_limit;
    h.n_batch = opt.n_batch;
    h.n_seq = n_seq;

    // Resume from a compatible checkpoint.
    const std::string ckpt = out + ".ckpt";
    ScanReport report;
    int64_t next = 0;  // index into ids
    if (fs::exists(ckpt)) {
        Stats ck = Stats::read(ckpt);
        check_resumable(ck, h, sites, ckpt);
        if (ck.header.docs_done > 0 && opt.keep_rows != (ck.n_kept() > 0))
            throw Error(ErrorKind::mismatch, ckpt,
                        "kept_rows (--keep-rows) differs from this scan's; delete the checkpoint to start over");
        const int64_t truncated = h.n_truncated;
        const std::string name = h.name;
        stats = std::move(ck);
        stats.header.n_truncated = truncated;
        stats.header.name = name;
        next = stats.header.docs_done;
        report.resumed_from = next;
        std::fprintf(stderr, "critdim: resuming %s from its checkpoint after %lld documents\n", out.c_str(),
                     static_cast<long long>(next));
    }

    model::ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_seq = n_seq;
    cp.n_batch = std::max(opt.n_batch, n_ctx);
    cp.n_threads = opt.n_threads;
    model::Context ctx(*m, cp);

    Accumulator acc(stats, opt, sigma_ref.get(), ctx.pool(), n_seq);
    if (opt.statistics) {
        for (size_t i = 0; i < sites.size(); ++i)
            ctx.hooks().observe(model::HookSite::parse(sites[i]), [&acc, &report, i](const model::ConstRows& rows) {
                const double t = now_seconds();
                acc.observe(i, rows);
                report.statistics_seconds += now_seconds() - t;
            });
    }

    // --keep-rows: each document's last row at every site, in document order.
    std::vector<BatchDoc> kept_batch;
    if (opt.keep_rows) {
        for (size_t i = 0; i < sites.size(); ++i)
            ctx.hooks().observe(
                model::HookSite::parse(sites[i]), [&stats, &kept_batch, i](const model::ConstRows& rows) {
                    const size_t E = static_cast<size_t>(rows.n_embd), n_sites = stats.sites.size();
                    const size_t base = stats.kept_docs.size() - kept_batch.size();
                    for (size_t k = 0; k < kept_batch.size(); ++k) {
                        const BatchDoc& d = kept_batch[k];
                        const float* src = rows.row(d.first_row + d.n_rows - 1);
                        std::copy(src, src + E,
                                  stats.kept_rows.begin() + static_cast<ptrdiff_t>(((base + k) * n_sites + i) * E));
                    }
                });
    }

    auto write_checkpoint = [&](int64_t done) {
        stats.header.complete = false;
        stats.header.docs_done = done;
        stats.write(ckpt);
    };

    int64_t done_tokens = 0;
    for (int64_t i = 0; i < next; ++i) done_tokens += static_cast<int64_t>(ids[static_cast<size_t>(i)].size());
    Progress progress("scan", total_tokens, "tokens", opt.progress);
    progress.update(done_tokens);
    const auto n_ids = static_cast<int64_t>(ids.size());
    double last_ckpt = now_seconds();
    int64_t docs_since_ckpt = 0;
    model::Batch batch;
    std::vector<BatchDoc> batch_docs;
    std::vector<uint8_t> counted;
    const int64_t run_from = next;
    const double loop_start = now_seconds();
    while (next < n_ids) {
        batch.clear();
        batch_docs.clear();
        counted.clear();
        while (next < n_ids && static_cast<int>(batch_docs.size()) < n_seq) {
            const std::vector<int32_t>& v = ids[static_cast<size_t>(next)];
            const auto len = static_cast<int64_t>(v.size());
            if (!batch_docs.empty() && batch.size() + len > opt.n_batch) break;
            const auto slot = static_cast<int32_t>(batch_docs.size());
            batch_docs.push_back({slot, first_doc + next, batch.size(), len});
            for (int64_t p = 0; p < len; ++p) {
                const int32_t t = v[static_cast<size_t>(p)];
                batch.add(t, static_cast<int32_t>(p), slot, false);
                bool count = true;
                if (opt.policy == PositionPolicy::last)
                    count = p + 1 == len;
                else if (opt.policy == PositionPolicy::content)
                    count = !(t == tok->bos_id() || tok->is_control(t));
                counted.push_back(count ? 1 : 0);
            }
            ++next;
        }
        ctx.clear();
        if (opt.statistics) acc.begin_batch(batch_docs, counted);
        if (opt.keep_rows) {
            kept_batch = batch_docs;
            for (const BatchDoc& d : batch_docs) stats.kept_docs.push_back(d.doc);
            stats.kept_rows.resize(stats.kept_docs.size() * sites.size() * static_cast<size_t>(hp.n_embd));
        }
        if (batch.size() > 0) ctx.decode(batch);
        if (opt.statistics) acc.end_batch();
        stats.header.n_docs += static_cast<int64_t>(batch_docs.size());
        stats.header.n_tokens += batch.size();
        report.n_tokens += batch.size();
        done_tokens += batch.size();
        docs_since_ckpt += static_cast<int64_t>(batch_docs.size());
        progress.update(done_tokens);
        const double t = now_seconds();
        if (next < n_ids && ((opt.checkpoint_docs > 0 && docs_since_ckpt >= opt.checkpoint_docs) ||
                             (opt.checkpoint_seconds > 0 && t - last_ckpt >= opt.checkpoint_seconds))) {
            write_checkpoint(next);
            last_ckpt = t;
            docs_since_ckpt = 0;
        }
    }
    progress.finish();
    report.forward_seconds = now_seconds() - loop_start;
    stats.header.complete = true;
    stats.header.docs_done = n_ids;
    stats.write(out);
    std::error_code ec;
    fs::remove(ckpt, ec);

    report.n_docs = n_ids - run_from;
    report.n_truncated = stats.header.n_truncated;
    report.seconds = now_seconds() - t0;
    return report;
}

}  // namespace critdim::analysis
