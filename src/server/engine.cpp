// The batching engine: one thread, one context, one KV-cache sequence per slot. Each step
// puts the next token of every generating slot and chunks of new prompts into one batch, so
// the weights are read once for all requests; each request's steering is attached to its
// slot's rows only, so requests with different plans share the batch.
#include <algorithm>
#include <deque>
#include <thread>

#include "critdim/server.hpp"

namespace critdim::server {

namespace {

struct Slot {
    std::shared_ptr<Job> job;
    std::optional<Decoding> decoding;
    int64_t n_prompt_done = 0;  // prompt tokens already in the cache
    int32_t next_token = -1;    // sampled, not yet decoded
    bool busy() const { return job != nullptr; }
};

struct Exclusive {
    const Engine::ExclusiveTask* task = nullptr;
    std::exception_ptr error;
    bool done = false;
};

}  // namespace

struct Engine::Impl {
    Impl(const model::Model& m, const tokenizer::Tokenizer& t, const EngineOptions& o);
    void loop();
    void admit(int32_t seq, std::shared_ptr<Job> job);
    void release(int32_t seq, bool cancelled);
    void publish(Job& job, Job::Piece piece, const Decoding& d);
    void fail_all(const std::string& message);
    void run_tasks();

    const model::Model& model;
    const tokenizer::Tokenizer& tok;
    EngineOptions options;
    model::Context ctx;
    std::vector<Slot> slots;

    mutable std::mutex mutex;  // guards queue, stopping and stats
    std::condition_variable wake;
    std::deque<std::shared_ptr<Job>> queue;
    std::deque<Exclusive*> tasks;  // run_exclusive() callers, waiting on task_done
    std::condition_variable task_done;
    bool stopping = false;
    EngineStats counters;
    std::thread thread;
};

Engine::Impl::Impl(const model::Model& m, const tokenizer::Tokenizer& t, const EngineOptions& o)
    : model(m),
      tok(t),
      options(o),
      // The last sequence belongs to exclusive tasks.
      ctx(m, model::ContextParams{o.n_ctx, o.n_batch, o.n_slots + 1, o.n_threads}),
      slots(static_cast<size_t>(o.n_slots)) {}

Engine::Engine(const model::Model& model, const tokenizer::Tokenizer& tok, const EngineOptions& options)
    : options_(options) {
    if (options.n_slots <= 0) throw_usage("--parallel must be at least 1");
    if (options.n_ctx <= 0) throw_usage("--ctx must be at least 1");
    impl_ = std::make_unique<Impl>(model, tok, options);
    impl_->thread = std::thread([this] { impl_->loop(); });
}

Engine::~Engine() { stop(); }

bool Engine::submit(std::shared_ptr<Job> job) {
    {
        std::lock_guard lock(impl_->mutex);
        // A job waits only when every slot is busy; at most queue_limit may wait.
        const size_t waiting_room = static_cast<size_t>(options_.n_slots) + options_.queue_limit;
        if (impl_->stopping || impl_->queue.size() + static_cast<size_t>(impl_->counters.slots_busy) >= waiting_room)
            return false;
        impl_->queue.push_back(std::move(job));
        impl_->counters.queued = impl_->queue.size();
    }
    impl_->wake.notify_one();
    return true;
}

void Engine::stop() {
    if (!impl_) return;
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wake.notify_one();
    if (impl_->thread.joinable()) impl_->thread.join();
}

bool Engine::run_exclusive(const ExclusiveTask& task) {
    Exclusive e;
    e.task = &task;
    {
        std::unique_lock lock(impl_->mutex);
        if (impl_->stopping) return false;
        impl_->tasks.push_back(&e);
        impl_->wake.notify_one();
        impl_->task_done.wait(lock, [&] { return e.done; });
    }
    if (e.error) std::rethrow_exception(e.error);
    return true;
}

EngineStats Engine::stats() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->counters;
}

void Engine::Impl::admit(int32_t seq, std::shared_ptr<Job> job) {
    Slot& s = slots[static_cast<size_t>(seq)];
    ctx.clear_seq(seq);
    s.job = std::move(job);
    s.decoding.emplace(tok, s.job->params);
    s.n_prompt_done = 0;
    s.next_token = -1;
    if (s.job->steering) {
        s.job->steering->set_sequences({seq});
        s.job->steering->set_prompt_length(seq, static_cast<int64_t>(s.job->prompt.size()));
        s.job->steering->attach(ctx);
    }
}

void Engine::Impl::release(int32_t seq, bool cancelled) {
    Slot& s = slots[static_cast<size_t>(seq)];
    if (s.job->steering) s.job->steering->detach(ctx);
    {  // counted before the client hears of it, so /health never lags behind an answer
        std::lock_guard lock(mutex);
        counters.slots_busy--;
        (cancelled ? counters.requests_cancelled : counters.requests_done)++;
    }
    {
        std::lock_guard lock(s.job->mutex);
        s.job->finished = true;
        s.job->finish = s.decoding->finish_reason();
    }
    s.job->changed.notify_all();
    s.job.reset();
    s.decoding.reset();
    ctx.clear_seq(seq);
}

void Engine::Impl::publish(Job& job, Job::Piece piece, const Decoding& d) {
    {
        std::lock_guard lock(job.mutex);
        job.pieces.push_back(std::move(piece));
        if (d.done()) job.finish = d.finish_reason();
    }
    job.changed.notify_all();
}

void Engine::Impl::fail_all(const std::string& message) {
    for (size_t i = 0; i < slots.size(); ++i) {
        if (!slots[i].busy()) continue;
        {
            std::lock_guard lock(slots[i].job->mutex);
            slots[i].job->error = message;
        }
        release(static_cast<int32_t>(i), false);
    }
}

// Between forward passes no batch is in flight and every sampled logit was read, so a task may
// use the context freely as long as it leaves its own sequence empty.
void Engine::Impl::run_tasks() {
    const auto seq = static_cast<int32_t>(slots.size());
    for (;;) {
        Exclusive* e = nullptr;
        {
            std::lock_guard lock(mutex);
            if (tasks.empty()) return;
            e = tasks.front();
            tasks.pop_front();
        }
        try {
            (*e->task)(ctx, seq);
        } catch (...) {
            e->error = std::current_exception();
        }
        ctx.clear_seq(seq);
        {
            std::lock_guard lock(mutex);
            e->done = true;
        }
        task_done.notify_all();
    }
}

void Engine::Impl::loop() {
    const int64_t n_vocab = model.hparams().n_vocab;
    model::Batch batch;
    std::vector<int32_t> row_slot;  // the slot of each output row
    for (;;) {
        {
            std::unique_lock lock(mutex);
            wake.wait(lock, [&] {
                const bool any_busy = std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.busy(); });
                return any_busy || !queue.empty() || !tasks.empty() || stopping;
            });
            const bool any_busy = std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.busy(); });
            if (stopping && queue.empty() && !any_busy && tasks.empty()) return;
            for (size_t i = 0; i < slots.size(); ++i) {
                if (slots[i].busy()) continue;
                std::shared_ptr<Job> job;
                while (!job && !queue.empty()) {
                    job = std::move(queue.front());
                    queue.pop_front();
                    if (!job->cancelled) break;
                    counters.requests_cancelled++;  // the client left while queued
                    {
                        std::lock_guard job_lock(job->mutex);
                        job->finished = true;
                    }
                    job->changed.notify_all();
                    job.reset();
                }
                counters.queued = queue.size();
                if (!job) break;
                counters.slots_busy++;
                lock.unlock();
                admit(static_cast<int32_t>(i), std::move(job));
                lock.lock();
            }
        }

        run_tasks();

        // Next tokens of generating slots first (one row each), then prompt chunks.
        batch.clear();
        for (size_t i = 0; i < slots.size(); ++i) {
            Slot& s = slots[i];
            if (!s.busy()) continue;
            if (s.job->cancelled) {
                release(static_cast<int32_t>(i), true);
                continue;
            }
            if (s.next_token < 0) continue;
            const auto seq = static_cast<int32_t>(i);
            batch.add(s.next_token, static_cast<int32_t>(ctx.seq_length(seq)), seq, true);
            s.next_token = -1;
        }
        for (size_t i = 0; i < slots.size() && batch.size() < options.n_batch; ++i) {
            Slot& s = slots[i];
            const auto n_prompt = static_cast<int64_t>(s.busy() ? s.job->prompt.size() : 0);
            if (!s.busy() || s.n_prompt_done >= n_prompt) continue;
            const auto seq = static_cast<int32_t>(i);
            const int64_t n = std::min(n_prompt - s.n_prompt_done, options.n_batch - batch.size());
            for (int64_t k = 0; k < n; ++k) {
                const int64_t pos = s.n_prompt_done + k;
                const bool last = pos + 1 == n_prompt;
                batch.add(s.job->prompt[static_cast<size_t>(pos)], static_cast<int32_t>(pos), seq, last);
            }
            s.n_prompt_done += n;
        }
        if (batch.size() == 0) continue;
        // Output rows come in batch order.
        row_slot.clear();
        for (int64_t r = 0; r < batch.size(); ++r)
            if (batch.want_logits[static_cast<size_t>(r)]) row_slot.push_back(batch.seq_ids[static_cast<size_t>(r)]);

        try {
            ctx.decode(batch);
        } catch (const std::exception& e) {
            fail_all(std::string("inference failed: ") + e.what());
            continue;
        }
        uint64_t n_sampled = 0;
        for (size_t o = 0; o < row_slot.size(); ++o) {
            const int32_t seq = row_slot[o];
            Slot& s = slots[static_cast<size_t>(seq)];
            Decoding& d = *s.decoding;
            if (d.done()) {  // max_tokens 0: the prompt was read, nothing to sample
                release(seq, false);
                continue;
            }
            Decoding::Step step = d.next(ctx.logits(static_cast<int64_t>(o)), n_vocab);
            ++n_sampled;
            publish(*s.job, {step.token, std::move(step.text), std::move(step.logprob)}, d);
            if (d.done())
                release(seq, false);
            else
                s.next_token = step.token;
        }
        std::lock_guard lock(mutex);
        counters.forward_passes++;
        counters.tokens_generated += n_sampled;
    }
}

}  // namespace critdim::server
