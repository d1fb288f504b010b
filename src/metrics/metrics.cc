#include "metrics/metrics.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace gradientd::metrics {
namespace {

bool IsNameChar(char c, bool first, bool colon) {
  const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return letter || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

// [a-zA-Z_:][a-zA-Z0-9_:]* for metrics, without ':' for labels.
bool IsValidName(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, colon)) return false;
  }
  return true;
}

void CheckLabels(const std::string& family, const Labels& labels, bool histogram) {
  for (const auto& [name, value] : labels) {
    if (!IsValidName(name, false) || name.starts_with("__") || (histogram && name == "le")) {
      throw std::invalid_argument("metric " + family + ": bad label name '" + name + "'");
    }
  }
}

}  // namespace

std::size_t ThisThreadShard() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

uint64_t Counter::Value() const {
  uint64_t sum = 0;
  for (const Shard& shard : shards_) sum += shard.value.load(std::memory_order_relaxed);
  return sum;
}

int64_t ShardedGauge::Value() const {
  uint64_t sum = 0;
  for (const Shard& shard : shards_) sum += shard.value.load(std::memory_order_relaxed);
  return static_cast<int64_t>(sum);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      words_per_shard_(bounds_.size() + 2),
      lines_per_shard_((words_per_shard_ + 7) / 8),
      lines_(new Line[kShards * lines_per_shard_]) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i - 1] < bounds_[i]))) {
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
  }
}

std::atomic<uint64_t>& Histogram::Word(std::size_t shard, std::size_t index) const {
  return lines_[shard * lines_per_shard_ + index / 8].words[index % 8];
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const std::size_t bucket = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  const std::size_t shard = ThisThreadShard();
  Word(shard, bucket).fetch_add(1, std::memory_order_relaxed);
  // The sum as a double's bits; the shard is (nearly always) this thread's
  // alone, so the exchange seldom retries.
  std::atomic<uint64_t>& sum = Word(shard, bounds_.size() + 1);
  uint64_t old_bits = sum.load(std::memory_order_relaxed);
  while (!sum.compare_exchange_weak(
      old_bits, std::bit_cast<uint64_t>(std::bit_cast<double>(old_bits) + value),
      std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.buckets.assign(bounds_.size() + 1, 0);
  for (std::size_t shard = 0; shard < kShards; ++shard) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      snapshot.buckets[i] += Word(shard, i).load(std::memory_order_relaxed);
    }
    snapshot.sum +=
        std::bit_cast<double>(Word(shard, bounds_.size() + 1).load(std::memory_order_relaxed));
  }
  for (const uint64_t n : snapshot.buckets) snapshot.count += n;
  return snapshot;
}

std::vector<double> ExponentialBounds(double start, double factor, std::size_t count) {
  std::vector<double> bounds;
  double bound = start;
  for (std::size_t i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

std::vector<Labels> LabelProduct(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& dimensions) {
  std::vector<Labels> product = {Labels{}};
  for (const auto& [name, values] : dimensions) {
    std::vector<Labels> next;
    for (const Labels& prefix : product) {
      for (const std::string& value : values) {
        Labels labels = prefix;
        labels.emplace_back(name, value);
        next.push_back(std::move(labels));
      }
    }
    product = std::move(next);
  }
  return product;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[32];
  const auto result = std::to_chars(text, text + sizeof text, value);
  return std::string(text, result.ptr);
}

void TextWriter::Header(std::string_view name, std::string_view help, std::string_view type) {
  out_.append("# HELP ").append(name).append(" ").append(EscapeHelp(help)).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void TextWriter::Name(std::string_view name, const Labels& labels) {
  out_.append(name);
  if (labels.empty()) return;
  out_ += '{';
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out_ += ',';
    out_.append(labels[i].first).append("=\"").append(EscapeLabelValue(labels[i].second));
    out_ += '"';
  }
  out_ += '}';
}

void TextWriter::Sample(std::string_view name, const Labels& labels, double value) {
  Name(name, labels);
  out_.append(" ").append(FormatValue(value)).append("\n");
}

void TextWriter::Sample(std::string_view name, const Labels& labels, uint64_t value) {
  Name(name, labels);
  out_.append(" ").append(std::to_string(value)).append("\n");
}

void TextWriter::Histogram(std::string_view name, const Labels& labels,
                           const metrics::Histogram& histogram) {
  const metrics::Histogram::Snapshot snapshot = histogram.Read();
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < snapshot.buckets.size(); ++i) {
    cumulative += snapshot.buckets[i];
    Labels with_le = labels;
    with_le.emplace_back("le", i < histogram.bounds().size() ? FormatValue(histogram.bounds()[i])
                                                             : std::string("+Inf"));
    Sample(bucket, with_le, cumulative);
  }
  Sample(std::string(name) + "_sum", labels, snapshot.sum);
  Sample(std::string(name) + "_count", labels, snapshot.count);
}

void Registry::CheckNew(const std::string& name, const std::vector<Labels>& labels,
                        bool histogram) {
  if (!IsValidName(name, true)) throw std::invalid_argument("bad metric name '" + name + "'");
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    throw std::invalid_argument("metric " + name + " is registered twice");
  }
  for (const Labels& set : labels) CheckLabels(name, set, histogram);
  names_.push_back(name);
}

Counter& Registry::AddCounter(std::string name, std::string help) {
  return AddCounterFamily(std::move(name), std::move(help), {Labels{}}).at(0);
}

CounterFamily& Registry::AddCounterFamily(std::string name, std::string help,
                                          std::vector<Labels> labels) {
  CheckNew(name, labels, false);
  auto family = std::make_shared<CounterFamily>(std::move(labels));
  families_.push_back([name, help, family](TextWriter& out) {
    out.Header(name, help, "counter");
    for (std::size_t i = 0; i < family->size(); ++i) {
      out.Sample(name, family->labels(i), family->at(i).Value());
    }
  });
  return *family;
}

Gauge& Registry::AddGauge(std::string name, std::string help, Labels labels) {
  CheckNew(name, {labels}, false);
  auto gauge = std::make_shared<Gauge>();
  families_.push_back([name, help, labels, gauge](TextWriter& out) {
    out.Header(name, help, "gauge");
    out.Sample(name, labels, gauge->Value());
  });
  return *gauge;
}

Histogram& Registry::AddHistogram(std::string name, std::string help, std::vector<double> bounds) {
  return AddHistogramFamily(std::move(name), std::move(help), {Labels{}}, std::move(bounds)).at(0);
}

HistogramFamily& Registry::AddHistogramFamily(std::string name, std::string help,
                                              std::vector<Labels> labels,
                                              std::vector<double> bounds) {
  CheckNew(name, labels, true);
  auto family = std::make_shared<HistogramFamily>(std::move(labels), bounds);
  families_.push_back([name, help, family](TextWriter& out) {
    out.Header(name, help, "histogram");
    for (std::size_t i = 0; i < family->size(); ++i) {
      out.Histogram(name, family->labels(i), family->at(i));
    }
  });
  return *family;
}

void Registry::AddCallback(std::string name, std::string help, std::string type,
                           std::vector<Labels> labels,
                           std::function<void(std::vector<double>*)> read) {
  if (type != "counter" && type != "gauge") {
    throw std::invalid_argument("metric " + name + ": a callback is a counter or a gauge");
  }
  CheckNew(name, labels, false);
  families_.push_back([name, help, type, labels, read](TextWriter& out) {
    std::vector<double> values(labels.size(), 0.0);
    read(&values);
    out.Header(name, help, type);
    for (std::size_t i = 0; i < labels.size(); ++i) out.Sample(name, labels[i], values[i]);
  });
}

void Registry::AddGaugeCallback(std::string name, std::string help, std::function<double()> read) {
  AddCallback(std::move(name), std::move(help), "gauge", {Labels{}},
              [read](std::vector<double>* values) { (*values)[0] = read(); });
}

std::string Registry::Render() const {
  std::string out;
  TextWriter writer(&out);
  for (const auto& family : families_) family(writer);
  return out;
}

}  // namespace gradientd::metrics
