// What the service tests share: the lesson's revenue data, a ServiceTest
// fixture (a Service over its own store, with request helpers), a
// FakeChangeLog, and request builders.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "service/change_log.h"
#include "service/series_store.h"
#include "service/service.h"

namespace gradientd::service {

inline const std::vector<double> kMonths = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
inline const std::vector<double> kRevenue = {52,  74,  79,  95,  115, 110,
                                             129, 126, 147, 146, 156, 184};

class ServiceTest : public ::testing::Test {
 protected:
  v1::Response Call(const v1::Request& request) {
    v1::Response response;
    service_.Handle(request, &response);
    return response;
  }

  v1::Response Ingest(const std::string& series, const std::vector<double>& x,
                      const std::vector<double>& y) {
    v1::Request r;
    r.mutable_ingest()->set_series(series);
    for (double v : x) r.mutable_ingest()->add_x(v);
    for (double v : y) r.mutable_ingest()->add_y(v);
    return Call(r);
  }

  v1::Response Fit(const std::string& series) {
    v1::Request r;
    r.mutable_fit()->set_series(series);
    return Call(r);
  }

  v1::Response Step(const std::string& series, uint64_t iterations,
                    std::optional<double> rate = std::nullopt) {
    v1::Request r;
    r.mutable_step()->set_series(series);
    r.mutable_step()->set_iterations(iterations);
    if (rate) r.mutable_step()->set_learning_rate(*rate);
    return Call(r);
  }

  v1::Response Configure(const std::string& series, std::optional<double> rate,
                         std::optional<uint32_t> steps_per_batch = std::nullopt) {
    v1::Request r;
    r.mutable_configure()->set_series(series);
    if (rate) r.mutable_configure()->set_learning_rate(*rate);
    if (steps_per_batch) r.mutable_configure()->set_steps_per_batch(*steps_per_batch);
    return Call(r);
  }

  // Everything a client can observe about every series.
  std::string ObservableState() {
    v1::Request r;
    r.mutable_list();
    return Call(r).SerializeAsString();
  }

  void ExpectErrorAndNoChange(const v1::Request& request, v1::Error::Code code) {
    const std::string before = ObservableState();
    const v1::Response response = Call(request);
    ASSERT_TRUE(response.has_error()) << response.DebugString();
    EXPECT_EQ(response.error().code(), code) << response.error().message();
    EXPECT_FALSE(response.error().message().empty());
    EXPECT_EQ(ObservableState(), before);
  }

  SeriesStore store_;
  Service service_{store_};
};

// A change log that records what it is given and fails every Append while
// `failing`, as a journal does once its disk has failed.
class FakeChangeLog : public ChangeLog {
 public:
  std::atomic<bool> failing{false};
  std::vector<v1::JournalRecord> records;

  Status Append(const v1::JournalRecord& record, uint64_t* token) override {
    if (failing) return Status::Internal("the journal failed (fake)");
    std::lock_guard lock(mu_);
    records.push_back(record);
    *token = records.size();
    return Status::Ok();
  }
  void OnDurable(uint64_t, std::function<void(const Status&)> done) override { done(Status::Ok()); }
  Status Outcome(uint64_t) override { return Status::Ok(); }

 private:
  std::mutex mu_;
};

inline v1::Request IngestRequest(const std::string& series, std::vector<double> x,
                                 std::vector<double> y, const std::string& producer = "",
                                 uint64_t sequence = 0) {
  v1::Request r;
  r.mutable_ingest()->set_series(series);
  for (double v : x) r.mutable_ingest()->add_x(v);
  for (double v : y) r.mutable_ingest()->add_y(v);
  r.mutable_ingest()->set_producer_id(producer);
  r.mutable_ingest()->set_sequence(sequence);
  return r;
}

inline v1::Request ListRequest(uint32_t page_size, const std::string& token,
                               const std::string& prefix = "") {
  v1::Request r;
  r.mutable_list()->set_page_size(page_size);
  r.mutable_list()->set_page_token(token);
  r.mutable_list()->set_prefix(prefix);
  return r;
}

// Every series name, following every page; fails the test on an error.
inline std::vector<std::string> ListAllNames(Service& service, uint32_t page_size,
                                             const std::string& prefix = "") {
  std::vector<std::string> names;
  std::string token;
  for (int page = 0; page < 1'000'000; ++page) {
    v1::Response response;
    service.Handle(ListRequest(page_size, token, prefix), &response);
    EXPECT_TRUE(response.has_series_list()) << response.DebugString();
    for (const v1::FitReply& fit : response.series_list().series()) names.push_back(fit.series());
    token = response.series_list().next_page_token();
    if (token.empty()) break;
  }
  return names;
}
}  // namespace gradientd::service
