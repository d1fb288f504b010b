// What `gradctl watch` shows, without any I/O: the rows of one refresh made
// from a listing and the previous refresh's counts (ingest rates, resets),
// sorted and bounded, rendered as the lines of one frame. Pure.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::cli {

enum class WatchSort { kName, kN, kRate };

// One series in one refresh.
struct WatchRow {
  v1::FitReply fit;  // over the watched view
  // Points per second of all history since the previous refresh; unset on
  // the first refresh, for a series new since then, and after a reset.
  std::optional<double> rate;
  bool restarted = false;  // its count went down (reset, or a restarted server)
};

// Remembers each series' all-history count between refreshes. The counts
// kept are those of the last refresh only, so memory is bounded by one
// listing.
class RateTracker {
 public:
  // The rows of `series` (taken), rated against the previous call made
  // `elapsed` earlier (ignored on the first call or when not positive).
  std::vector<WatchRow> Update(std::vector<v1::FitReply> series,
                               std::chrono::nanoseconds elapsed);

 private:
  std::map<std::string, uint64_t> previous_;
  bool first_ = true;
};

// The count rates are computed from: all history (views[0]) whatever the
// watched view, so that a window's points leaving it are not a reset.
uint64_t AllHistoryCount(const v1::FitReply& fit);

// Sorts by name (ascending), n or rate (descending; unrated rows last,
// ties by name).
void SortRows(WatchSort sort, std::vector<WatchRow>* rows);

// A number in at most 6 significant digits, exponent without '+' or
// leading zeros: "10.3881", "-1778.33", "1.5e-07", "2.3e+12" -> "2.3e12".
std::string FormatCompact(double value);

// Cuts `text` to at most `width` display columns, ending in "…" when cut.
std::string TruncateToWidth(const std::string& text, std::size_t width);

struct FrameLayout {
  std::string heading;     // the first line (time, server, view, counts)
  std::size_t max_rows = 50;  // series rows shown; the rest are "... and K more"
  std::size_t width = 0;   // columns of the terminal; 0 = unbounded
};

// The lines of one refresh: the heading, a table header, at most
// layout.max_rows rows, then "... and K more series" when some were left
// out, and a line saying so when `listing_cut` (the listing stopped before
// its last page). With a width, the series names are cut so that the table
// fits, and every line is cut to it.
std::vector<std::string> RenderFrame(const std::vector<WatchRow>& rows, bool listing_cut,
                                     const FrameLayout& layout);

}  // namespace gradientd::cli
