#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "critdim/base.hpp"

namespace critdim {

static double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool force)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(force || isatty(2)),
      start_(now_seconds()) {}

Progress::~Progress() {
    if (!finished_) finish();
}

double Progress::elapsed_seconds() const { return now_seconds() - start_; }

void Progress::update(int64_t done) {
    done_ = done;
    if (!enabled_) return;
    const double t = now_seconds();
    if (t - last_draw_ < 0.2) return;
    last_draw_ = t;
    draw(false);
}

void Progress::finish() {
    finished_ = true;
    if (enabled_) draw(true);
}

void Progress::draw(bool final) {
    const double el = elapsed_seconds();
    const double rate = el > 0 ? static_cast<double>(done_) / el : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
    std::fprintf(stderr, "\r%s: %lld/%lld %s (%.0f%%), %.1f %s/s, %s %d:%02d   %s", label_.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(),
                 total_ > 0 ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0, rate,
                 unit_.c_str(), final ? "took" : "ETA", static_cast<int>((final ? el : eta) / 60),
                 static_cast<int>(final ? el : eta) % 60, final ? "\n" : "");
    std::fflush(stderr);
}

}  // namespace critdim
