// Writes the fuzzers' seed corpus: small streams of valid (and a few
// deliberately bad) frames, in the input format of frame_decoder_checks.h.
//
//   build-fuzz/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
//
// The output is committed; rerun this only to change the seeds.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_codec.h"

namespace {

using gradientd::protocol::AppendFrame;
namespace v1 = gradientd::v1;

// Plan bytes: limit index (kFrameLimits) | chunk index (kChunkLimits) << 3,
// then the chunk seed.
std::string Plan(unsigned limit, unsigned chunk, unsigned seed = 7) {
  return {static_cast<char>(limit | (chunk << 3)), static_cast<char>(seed)};
}

class Stream {
 public:
  Stream& Add(const v1::Request& r) {
    AppendFrame(r, &bytes_);
    return *this;
  }
  Stream& Raw(const std::string& raw) {
    bytes_ += raw;
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

uint64_t next_id = 1;

v1::Request Ingest(const std::string& series, const std::vector<double>& x,
                   const std::vector<double>& y) {
  v1::Request r;
  r.set_id(next_id++);
  r.mutable_ingest()->set_series(series);
  for (double v : x) r.mutable_ingest()->add_x(v);
  for (double v : y) r.mutable_ingest()->add_y(v);
  return r;
}

v1::Request Gradient(const std::string& series, const double* m, const double* b) {
  v1::Request r;
  r.set_id(next_id++);
  r.mutable_gradient()->set_series(series);
  if (m != nullptr) r.mutable_gradient()->set_m(*m);
  if (b != nullptr) r.mutable_gradient()->set_b(*b);
  return r;
}

v1::Request Fit(const std::string& series) {
  v1::Request r;
  r.set_id(next_id++);
  r.mutable_fit()->set_series(series);
  return r;
}

v1::Request Step(const std::string& series, uint64_t iterations, const double* rate = nullptr,
                 const double* tolerance = nullptr) {
  v1::Request r;
  r.set_id(next_id++);
  r.mutable_step()->set_series(series);
  r.mutable_step()->set_iterations(iterations);
  if (rate != nullptr) r.mutable_step()->set_learning_rate(*rate);
  if (tolerance != nullptr) r.mutable_step()->set_tolerance(*tolerance);
  return r;
}

v1::Request Configure(const std::string& series, double rate, uint32_t steps_per_batch, double m,
                      double b) {
  v1::Request r;
  r.set_id(next_id++);
  auto* c = r.mutable_configure();
  c->set_series(series);
  c->set_learning_rate(rate);
  c->set_steps_per_batch(steps_per_batch);
  c->set_m(m);
  c->set_b(b);
  return r;
}

v1::Request Reset(const std::string& series) {
  v1::Request r;
  r.set_id(next_id++);
  r.mutable_reset()->set_series(series);
  return r;
}

v1::Request List() {
  v1::Request r;
  r.set_id(next_id++);
  r.mutable_list();
  return r;
}

const std::vector<double> kMonths = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
const std::vector<double> kRevenue = {52, 74, 79, 95, 115, 110, 129, 126, 147, 146, 156, 184};

void Write(const std::filesystem::path& dir, const std::string& name, const std::string& plan,
           const Stream& stream) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << plan << stream.bytes();
  std::printf("%s: %zu bytes\n", (dir / name).c_str(), plan.size() + stream.bytes().size());
}

// frame_decoder: framing, chunking and the ways a connection closes.
void WriteFrameDecoderSeeds(const std::filesystem::path& root) {
  const double half = 0.5;
  const auto dir = root / "frame_decoder";
  Stream pipelined;
  pipelined.Add(Ingest("a", {1, 2, 3}, {2, 4, 6}))
      .Add(Gradient("a", &half, nullptr))
      .Add(Step("", 100))
      .Add(v1::Request())               // empty frame: an empty request
      .Add(Fit(std::string(200, 'f')))  // 2-byte header
      .Add(List())
      .Add(Reset("a"));
  Write(dir, "pipelined_whole", Plan(0, 0), pipelined);
  Write(dir, "pipelined_bytewise", Plan(0, 1), pipelined);
  Write(dir, "pipelined_chunks", Plan(1, 5, 42), pipelined);

  Stream partial;
  partial.Add(Fit("a")).Add(List());
  std::string last;
  AppendFrame(Ingest("b", {1, 2, 3, 4}, {1, 2, 3, 4}), &last);
  partial.Raw(last.substr(0, last.size() / 2));
  Write(dir, "partial_last_frame", Plan(2, 4), partial);

  Stream oversize;
  oversize.Add(List()).Add(Fit(std::string(200, 'o')));  // over a 127-byte limit
  Write(dir, "oversize_frame", Plan(6, 3), oversize);

  Stream malformed;
  malformed.Add(List()).Raw(std::string(9, '\xff') + '\x02');  // a 10-byte varint over 64 bits
  Write(dir, "malformed_header", Plan(0, 0), malformed);

  Stream undecodable;
  undecodable.Add(Fit("u")).Raw(std::string("\x03\xff\xff\xff", 4)).Add(List());
  Write(dir, "undecodable_body", Plan(3, 2), undecodable);

  Stream empties;
  empties.Raw(std::string(3, '\0')).Raw(std::string("\x01\x08", 2));  // then a 1-byte frame
  Write(dir, "zero_limit", Plan(7, 0), empties);
}

// request_path: the protocol's operations, valid and invalid.
void WriteRequestPathOperationSeeds(const std::filesystem::path& root) {
  const double zero = 0, lesson_rate = 0.01, half = 0.5, tiny = 1e-6, negative = -1;
  const auto dir = root / "request_path";
  Stream lesson;
  lesson.Add(Ingest("revenue", kMonths, kRevenue))
      .Add(Gradient("revenue", &zero, &zero))
      .Add(Step("revenue", 1000, &lesson_rate))
      .Add(Fit("revenue"))
      .Add(List());
  Write(dir, "revenue_lesson", Plan(0, 0), lesson);

  Stream configured;
  configured.Add(Configure("a", 0.001, 3, 1, 2))
      .Add(Ingest("a", {0, 1, 2, 3, 4}, {1, 3, 5, 7, 9.5}))
      .Add(Gradient("a", nullptr, nullptr))
      .Add(Step("a", 100, &zero, &tiny))
      .Add(Configure("a", 0, 0, 0, 0))
      .Add(Ingest("a", {5}, {11}))
      .Add(Fit("a"));
  Write(dir, "configure_then_ingest", Plan(0, 6), configured);

  Stream errors;
  errors.Add(Ingest("e", {1, std::nan("")}, {1, 2}))
      .Add(Ingest("e", {1, 2, 3}, {1, 2}))
      .Add(Ingest("e", {1e151}, {0}))
      .Add(Fit("nope"))
      .Add(Configure("e", 0, 1, 0, 0))
      .Add(Gradient("e", nullptr, nullptr))
      .Add(Step("e", 1))
      .Add(Ingest("e", {1, 2}, {3, 4}))
      .Add(Step("e", 1, &negative))
      .Add(Step("e", 200'000'000))
      .Add(Configure("e", -1, 1, 0, 0))
      .Add(Reset("nope"))
      .Add(Fit(std::string(300, 'n')))
      .Add(v1::Request())
      .Add(List());
  Write(dir, "errors", Plan(0, 0), errors);

  Stream offset;
  std::vector<double> t, y;
  for (int i = 0; i < 16; ++i) {
    t.push_back(1.7e9 + 60.0 * i);
    y.push_back(3 + 0.5 * i + (i % 3));
  }
  offset.Add(Ingest("ts", t, y)).Add(Fit("ts")).Add(Gradient("ts", nullptr, nullptr));
  Write(dir, "offset_timestamps", Plan(0, 0), offset);

  Stream constant;
  constant.Add(Ingest("c", {5, 5, 5}, {1, 2, 3}))
      .Add(Fit("c"))
      .Add(Step("c", 10))
      .Add(Reset("c"))
      .Add(Fit("c"))
      .Add(List());
  Write(dir, "constant_x", Plan(0, 4), constant);

  Stream extremes;
  extremes.Add(Ingest("x", {1e150, -1e150, 0}, {-1e150, 1e150, 1}))
      .Add(Fit("x"))
      .Add(Step("x", 5))
      .Add(Gradient("x", &half, &half));
  Write(dir, "extremes", Plan(0, 0), extremes);

  Stream exactly_once;
  for (const uint64_t sequence : std::vector<uint64_t>{1, 2, 2, 1, 5}) {
    v1::Request r = Ingest("p", {static_cast<double>(sequence), 2}, {1, 0});
    r.mutable_ingest()->set_producer_id("producer-1");
    r.mutable_ingest()->set_sequence(sequence);
    exactly_once.Add(r);
  }
  exactly_once.Add(Fit("p"));
  Write(dir, "exactly_once_producer", Plan(0, 0), exactly_once);

  Stream default_series;
  default_series.Add(Ingest("", {1, 2}, {2, 1})).Add(Gradient("", &half, nullptr)).Add(List());
  Write(dir, "default_series_chunked", Plan(0, 2, 3), default_series);
}

// request_path: list pages, the names' and ids' alphabets, unknown fields.
void WriteRequestPathEdgeSeeds(const std::filesystem::path& root) {
  const auto dir = root / "request_path";
  // List pages: page sizes, tokens, prefixes, and bad ones.
  Stream pages;
  for (const char* name : {"a1", "a2", "b1", "b2", "b3"}) pages.Add(Ingest(name, {1}, {2}));
  for (const auto& [size, token, prefix] :
       std::vector<std::tuple<uint32_t, std::string, std::string>>{{2, "", ""},
                                                                   {2, "a2", ""},
                                                                   {1, "b1", "b"},
                                                                   {0, "", "a"},
                                                                   {5000, "", ""},
                                                                   {1, "a1", "b"},
                                                                   {1, "\xff", ""}}) {
    v1::Request r = List();
    r.mutable_list()->set_page_size(size);
    r.mutable_list()->set_page_token(token);
    r.mutable_list()->set_prefix(prefix);
    pages.Add(r);
  }
  Write(dir, "list_pages", Plan(0, 0), pages);

  // Names and producer ids at the edges of their alphabets.
  Stream alphabets;
  for (const char* name : {"caf\xc3\xa9", "c1\xc2\x85", "\xf0\x9f\x98\x80"}) {
    alphabets.Add(Ingest(name, {1}, {2}));
  }
  for (const char* id : {"gradctl-0123456789abcdef", "with space", "tab\t", "~!"}) {
    v1::Request r = Ingest("p", {1}, {2});
    r.mutable_ingest()->set_producer_id(id);
    r.mutable_ingest()->set_sequence(1);
    alphabets.Add(r);
  }
  // Not UTF-8: protobuf refuses the frame (and the connection closes).
  alphabets.Add(Ingest("over\xc0\xaf", {1}, {2}));
  Write(dir, "alphabets", Plan(0, 0), alphabets);

  // Unknown fields: a frame of nothing else, and an ingest whose batch
  // has some (field 1000, varint; field 31, length-delimited).
  Stream unknown;
  unknown.Raw(std::string("\x06\xc0\x3e\x00\xc0\x3e\x01", 7));
  const std::string batch = Ingest("u", {1, 2}, {3, 4}).ingest().SerializeAsString() +
                            std::string("\xc0\x3e\x05\xfa\x01\x02hi", 8);
  const std::string body = "\x08\x07\x12" + std::string(1, static_cast<char>(batch.size())) + batch;
  unknown.Raw(std::string(1, static_cast<char>(body.size())) + body);
  unknown.Add(Fit("u"));
  Write(dir, "unknown_fields", Plan(0, 0), unknown);
}

// request_path: windows, decay, descent modes and views, valid and invalid.
void WriteRequestPathViewSeeds(const std::filesystem::path& root) {
  const auto dir = root / "request_path";
  constexpr int64_t kSecond = 1'000'000'000;
  // The fuzz checker's clock starts here (request_path_checks.h).
  constexpr int64_t kStart = 1'700'000'000'000'000'000;
  const auto at = [](v1::Request r, int64_t t) {
    r.mutable_ingest()->set_event_time_unix_nanos(t);
    return r;
  };
  Stream views;
  v1::Request window = Configure("w", 0, 2, 0, 0);
  window.mutable_configure()->set_window_nanos(60 * kSecond);
  window.mutable_configure()->set_window_buckets(6);
  window.mutable_configure()->set_half_life_nanos(30 * kSecond);
  window.mutable_configure()->set_descent_view(v1::VIEW_WINDOW);
  views.Add(window);
  for (int i = 0; i < 4; ++i) {
    views.Add(at(Ingest("w", {1.0 * i, 2.0 * i}, {3.0 * i, 1 + 4.0 * i}), kStart - 50 * i * kSecond));
  }
  for (const v1::View view : {v1::VIEW_ALL, v1::VIEW_WINDOW, v1::VIEW_DECAYED}) {
    v1::Request fit = Fit("w");
    fit.mutable_fit()->set_view(view);
    v1::Request gradient = Gradient("w", nullptr, nullptr);
    gradient.mutable_gradient()->set_view(view);
    v1::Request step = Step("w", 50);
    step.mutable_step()->set_view(view);
    step.mutable_step()->set_mode(v1::DESCENT_MODE_PLAIN);
    step.mutable_step()->set_relative_tolerance(1e-6);
    v1::Request list = List();
    list.mutable_list()->set_view(view);
    views.Add(fit).Add(gradient).Add(step).Add(list);
  }
  views.Add(at(Ingest("w", {9}, {9}), kStart + 10 * 60 * kSecond));  // too far ahead
  views.Add(Reset("w")).Add(Fit("w"));
  Write(dir, "views_window_decay", Plan(0, 0), views);

  Stream refused;
  refused.Add(Ingest("r", {1, 2}, {2, 3}));
  v1::Request bad_view = Fit("r");
  bad_view.mutable_fit()->set_view(static_cast<v1::View>(10));
  v1::Request no_window = Gradient("r", nullptr, nullptr);
  no_window.mutable_gradient()->set_view(v1::VIEW_WINDOW);
  v1::Request standardized = Step("r", 5);
  standardized.mutable_step()->set_mode(v1::DESCENT_MODE_STANDARDIZED);
  standardized.mutable_step()->set_learning_rate(1);
  refused.Add(bad_view).Add(no_window).Add(standardized);
  v1::Request both = Configure("r", 0, 1, 0, 0);
  both.mutable_configure()->set_remove_window(true);
  both.mutable_configure()->set_window_nanos(kSecond);
  v1::Request buckets_only = Configure("r", 0, 1, 0, 0);
  buckets_only.mutable_configure()->set_window_buckets(4);
  v1::Request follows_nothing = Configure("r", 0, 1, 0, 0);
  follows_nothing.mutable_configure()->set_descent_view(v1::VIEW_DECAYED);
  v1::Request narrow = Configure("r", 0, 1, 0, 0);
  narrow.mutable_configure()->set_window_nanos(3);
  narrow.mutable_configure()->set_window_buckets(4);
  refused.Add(both).Add(buckets_only).Add(follows_nothing).Add(narrow).Add(List());
  Write(dir, "views_refused", Plan(0, 0), refused);
}

}  // namespace

// The seeds are written in this order: the request ids (next_id) follow it.
int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  WriteFrameDecoderSeeds(root);
  WriteRequestPathOperationSeeds(root);
  WriteRequestPathEdgeSeeds(root);
  WriteRequestPathViewSeeds(root);
  return 0;
}
