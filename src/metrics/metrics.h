// Metrics in the Prometheus text exposition format 0.0.4.
//
// A Registry holds metric families in registration order and renders them
// all at scrape time. Counters and histograms are sharded per thread
// (cache-line-padded shards picked by a thread-local slot, relaxed atomics)
// and summed when rendered, so the hot path takes no lock and shares no
// cache line with other threads. A family's label values are fixed when it
// is registered: the hot path indexes an array (Family::at), never a map or
// a string. Values that are state (how many series, connections) are read
// at scrape time by callbacks instead of being kept up to date.
//
// No registry is global: each Node owns one, and components get pointers to
// their own metrics (null: no metrics).
//
// Thread-safety: Counter, Gauge, Histogram and Family::at from any thread;
// registration (Add*) before the metrics are shared; Render from any
// thread, concurrently with updates.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gradientd::metrics {

// Shards per counter or histogram. Threads beyond it share shards (still
// exact, only no longer contention-free).
inline constexpr std::size_t kShards = 16;

// The calling thread's shard, in [0, kShards): assigned round robin the
// first time a thread asks.
std::size_t ThisThreadShard();

// A monotonic count.
class Counter {
 public:
  void Add(uint64_t n = 1) {
    shards_[ThisThreadShard()].value.fetch_add(n, std::memory_order_relaxed);
  }
  // The sum of the shards.
  uint64_t Value() const;

 private:
  struct alignas(64) Shard {
    std::atomic<uint64_t> value{0};
  };
  std::array<Shard, kShards> shards_;
};

// A value that goes up and down; one atomic (gauges are not hot).
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down, often (bytes queued): sharded like
// Counter, summed at scrape time. The shards wrap around, their sum is
// exact.
class ShardedGauge {
 public:
  void Add(int64_t delta) {
    shards_[ThisThreadShard()].value.fetch_add(static_cast<uint64_t>(delta),
                                               std::memory_order_relaxed);
  }
  int64_t Value() const;

 private:
  struct alignas(64) Shard {
    std::atomic<uint64_t> value{0};
  };
  std::array<Shard, kShards> shards_;
};

// Observations counted in fixed buckets: bucket i holds the values v with
// bounds[i-1] < v <= bounds[i] (a value equal to a bound is in that
// bucket), the last the values above every bound (+Inf). NaN is ignored.
class Histogram {
 public:
  // REQUIRES: `bounds` finite and strictly increasing.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> buckets;  // per bucket, not cumulative; last is +Inf
    double sum = 0;
    uint64_t count = 0;  // the sum of `buckets`
  };
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  // 64-byte lines of words; a shard is `words_per_shard_` words: the bucket
  // counts, then the sum (a double's bits).
  struct alignas(64) Line {
    std::array<std::atomic<uint64_t>, 8> words{};
  };
  std::atomic<uint64_t>& Word(std::size_t shard, std::size_t index) const;

  const std::vector<double> bounds_;
  const std::size_t words_per_shard_;
  const std::size_t lines_per_shard_;
  std::unique_ptr<Line[]> lines_;
};

// Bucket bounds: `count` bounds from `start`, each `factor` times the last.
std::vector<double> ExponentialBounds(double start, double factor, std::size_t count);

// One label set of a family: (name, value) pairs in order.
using Labels = std::vector<std::pair<std::string, std::string>>;

// The label sets of a family whose labels are the cross product of the
// given value lists, in row-major order: with {{"op", {a, b}}, {"code",
// {x, y, z}}}, index 3 * op + code.
std::vector<Labels> LabelProduct(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& dimensions);

// A family's members, one per label set given at registration, in that
// order.
template <typename Metric>
class Family {
 public:
  template <typename... Args>
  Family(std::vector<Labels> labels, const Args&... args) : labels_(std::move(labels)) {
    members_.reserve(labels_.size());
    for (std::size_t i = 0; i < labels_.size(); ++i) {
      members_.push_back(std::make_unique<Metric>(args...));
    }
  }
  // REQUIRES: index < size().
  Metric& at(std::size_t index) { return *members_[index]; }
  const Metric& at(std::size_t index) const { return *members_[index]; }
  std::size_t size() const { return members_.size(); }
  const Labels& labels(std::size_t index) const { return labels_[index]; }

 private:
  std::vector<Labels> labels_;
  std::vector<std::unique_ptr<Metric>> members_;
};
using CounterFamily = Family<Counter>;
using HistogramFamily = Family<Histogram>;

// Writes the exposition text: a family's HELP and TYPE, then its samples.
class TextWriter {
 public:
  explicit TextWriter(std::string* out) : out_(*out) {}
  // `type`: "counter", "gauge", "histogram", "untyped".
  void Header(std::string_view name, std::string_view help, std::string_view type);
  void Sample(std::string_view name, const Labels& labels, double value);
  void Sample(std::string_view name, const Labels& labels, uint64_t value);
  void Histogram(std::string_view name, const Labels& labels, const Histogram& histogram);

 private:
  void Name(std::string_view name, const Labels& labels);
  std::string& out_;
};

// Escapes a label value (backslash, double quote, newline) or, with
// `help`, a HELP text (backslash, newline).
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);
// A sample value: integers exactly, others shortest round-trip; "+Inf",
// "-Inf", "NaN".
std::string FormatValue(double value);

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registration. Names are checked (the format's grammar, no reserved
  // "__" labels or "le" on histograms, each family name once): a bad one is
  // a programming error and throws std::invalid_argument. The references
  // live as long as the Registry.
  Counter& AddCounter(std::string name, std::string help);
  CounterFamily& AddCounterFamily(std::string name, std::string help, std::vector<Labels> labels);
  Gauge& AddGauge(std::string name, std::string help, Labels labels = {});
  Histogram& AddHistogram(std::string name, std::string help, std::vector<double> bounds);
  HistogramFamily& AddHistogramFamily(std::string name, std::string help,
                                      std::vector<Labels> labels, std::vector<double> bounds);
  // A family whose values are read at scrape time: `read` fills one value
  // per label set, in order. `type` is "counter" or "gauge".
  void AddCallback(std::string name, std::string help, std::string type, std::vector<Labels> labels,
                   std::function<void(std::vector<double>*)> read);
  // A single-valued gauge read at scrape time.
  void AddGaugeCallback(std::string name, std::string help, std::function<double()> read);

  // Every family, in registration order.
  std::string Render() const;

 private:
  void CheckNew(const std::string& name, const std::vector<Labels>& labels, bool histogram);
  std::vector<std::string> names_;
  std::vector<std::function<void(TextWriter&)>> families_;
};

}  // namespace gradientd::metrics
