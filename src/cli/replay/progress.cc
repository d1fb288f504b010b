#include "cli/replay/progress.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "cli/output.h"

namespace gradientd::cli {
namespace {

// How often the progress bar is redrawn at most.
constexpr std::chrono::nanoseconds kBarInterval = std::chrono::milliseconds(100);

}  // namespace

void Progress::Update(double fraction, uint64_t points, std::optional<nanoseconds> eta) {
  if (mode_ == ProgressMode::kNone) return;
  const auto now = Clock::now();
  const nanoseconds every = mode_ == ProgressMode::kBar ? kBarInterval : interval_;
  if (drawn_once_ && now - last_draw_ < every) return;
  if (mode_ == ProgressMode::kLines && now - start_ < interval_) return;
  Draw(now, fraction, points, eta, false);
}

void Progress::Finish(double fraction, uint64_t points) {
  if (mode_ == ProgressMode::kBar && drawn_once_) {
    Draw(Clock::now(), fraction, points, nanoseconds(0), true);
    err_ << '\n';
    err_.flush();
  }
}

void Progress::Interrupt() {
  if (mode_ == ProgressMode::kBar && drawn_once_ && !interrupted_) {
    err_ << '\n';
    interrupted_ = true;
    width_ = 0;
  }
}

void Progress::Draw(Clock::time_point now, double fraction, uint64_t points,
                    std::optional<nanoseconds> eta, bool final) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(points) / seconds : 0.0;
  if (!eta && fraction > 0 && fraction < 1 && seconds > 0) {
    eta = std::chrono::duration_cast<nanoseconds>(
        std::chrono::duration<double>(seconds * (1 - fraction) / fraction));
  }
  std::string eta_text = final ? "done" : eta ? FormatDuration(*eta) : "?";
  if (mode_ == ProgressMode::kBar) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(std::floor(fraction * kWidth));
    std::string line = "[";
    for (int i = 0; i < kWidth; ++i) line += i < filled ? '#' : '.';
    line += "] " + FormatFixed(fraction * 100, 1) + "%  " + std::to_string(points) +
            " points sent  " + FormatFixed(rate, 0) + " points/s  ETA " + eta_text;
    const std::size_t pad = width_ > line.size() ? width_ - line.size() : 0;
    width_ = line.size();
    err_ << '\r' << line << std::string(pad, ' ');
  } else {
    err_ << "gradctl: replay: " << FormatFixed(fraction * 100, 1) << "%, " << points
         << " points sent, " << FormatFixed(rate, 0) << " points/s, ETA " << eta_text << '\n';
  }
  err_.flush();
  drawn_once_ = true;
  interrupted_ = false;
  last_draw_ = now;
}

}  // namespace gradientd::cli
