// --max-window-memory: the heap of every series' sliding window together is
// bounded; a configure that would pass the bound is refused and changes
// nothing, a window made smaller or removed gives its bytes back, a change
// the log refused takes none, and recovery (journal or snapshot) counts the
// windows it rebuilds.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <tuple>
#include <vector>

#include "core/window.h"
#include "service_test_support.h"
#include "views_test_support.h"

namespace gradientd::service {
namespace {

using namespace gradientd::testing;  // the view tests' requests and constants

const std::size_t k64 = core::BucketWindow::HeapBytes(64);
const std::size_t k32 = core::BucketWindow::HeapBytes(32);
// Two 64-bucket windows and 100 bytes to spare.
const std::size_t kBudget = 2 * k64 + 100;

ServiceLimits Budget() {
  ServiceLimits limits;
  limits.max_window_bytes = kBudget;
  return limits;
}

v1::Response Call(Service& service, const v1::Request& request) {
  v1::Response response;
  service.Handle(request, &response);
  return response;
}

v1::Request Window(const std::string& series, uint32_t buckets) {
  return ConfigureViews(series, {.window_ns = kHour, .buckets = buckets});
}

v1::Request RemoveWindow(const std::string& series) {
  v1::Request r;
  r.mutable_configure()->set_series(series);
  r.mutable_configure()->set_remove_window(true);
  return r;
}

const std::vector<std::string> kNames = {"a", "b", "c", "d", "e"};

// Refused for the budget, with nothing changed: no series created, no
// record logged, every view of every series as it was.
void ExpectRefusedForTheBudget(Service& service, SeriesStore& store, const FakeChangeLog& log,
                               const v1::Request& request) {
  const std::string before = EveryViewBytes(service, kNames);
  const std::size_t series = store.size();
  const std::size_t records = log.records.size();
  const v1::Response response = Call(service, request);
  ASSERT_TRUE(response.has_error()) << response.DebugString();
  EXPECT_EQ(response.error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_NE(response.error().message().find("--max-window-memory"), std::string::npos)
      << response.error().message();
  EXPECT_EQ(EveryViewBytes(service, kNames), before);
  EXPECT_EQ(store.size(), series);
  EXPECT_EQ(log.records.size(), records);
}

TEST(ServiceWindowBudgetTest, ConfiguresPastTheBudgetAreRefusedAndFreedBytesComeBack) {
  ASSERT_EQ(k64, 64 * sizeof(int64_t) + 2 * 64 * sizeof(core::PointStats));
  SeriesStore store;
  FakeChangeLog log;
  Service service(store, Budget());
  service.SetChangeLog(&log);
  ASSERT_TRUE(Call(service, Window("a", 64)).has_fit());
  ASSERT_TRUE(Call(service, TimedIngest("a", kEpoch2023, 1)).has_ack());
  ASSERT_TRUE(Call(service, Window("b", 64)).has_fit());
  {
    SCOPED_TRACE("a new series' window");
    ExpectRefusedForTheBudget(service, store, log, Window("c", 60));
  }
  {
    SCOPED_TRACE("a window grown");
    ExpectRefusedForTheBudget(service, store, log, Window("a", 128));
  }
  // Smaller, then removed: the bytes come back.
  ASSERT_TRUE(Call(service, Window("a", 32)).has_fit());
  ASSERT_TRUE(Call(service, Window("c", 32)).has_fit());
  {
    SCOPED_TRACE("one more after the shrink");
    ExpectRefusedForTheBudget(service, store, log, Window("d", 32));
  }
  ASSERT_TRUE(Call(service, RemoveWindow("b")).has_fit());
  ASSERT_TRUE(Call(service, Window("c", 64)).has_fit());
  // Held now: a 32, c 64; room for one more 32.
  ASSERT_LE(k64 + 2 * k32, kBudget);
  // A configure the log refuses takes nothing from the budget.
  log.failing = true;
  ASSERT_TRUE(Call(service, Window("d", 32)).has_error());
  log.failing = false;
  ASSERT_TRUE(Call(service, Window("d", 32)).has_fit());
  {
    SCOPED_TRACE("full again");
    ExpectRefusedForTheBudget(service, store, log, Window("e", 32));
  }
}

TEST(ServiceWindowBudgetTest, RecoveryCountsTheWindowsItRebuilds) {
  SeriesStore store;
  FakeChangeLog log;
  Service service(store, Budget());
  service.SetChangeLog(&log);
  ASSERT_TRUE(Call(service, Window("a", 64)).has_fit());
  ASSERT_TRUE(Call(service, Window("b", 64)).has_fit());
  ASSERT_TRUE(Call(service, Window("b", 32)).has_fit());
  ASSERT_TRUE(Call(service, RemoveWindow("b")).has_fit());
  ASSERT_TRUE(Call(service, Window("c", 32)).has_fit());
  v1::Snapshot snapshot;
  service.Checkpoint([] { return uint64_t{0}; }, &snapshot);

  SeriesStore replayed_store;
  FakeChangeLog replayed_log;
  Service replayed(replayed_store, Budget());
  for (const v1::JournalRecord& record : log.records) replayed.Apply(record);
  SeriesStore restored_store;
  FakeChangeLog restored_log;
  Service restored(restored_store, Budget());
  restored.Restore(snapshot);
  for (auto [s, st, l] : {std::tuple{&replayed, &replayed_store, &replayed_log},
                          std::tuple{&restored, &restored_store, &restored_log}}) {
    s->SetChangeLog(l);
    // Held: a 64 and c 32: d's 64 fits only once c's window is gone.
    SCOPED_TRACE(s == &replayed ? "journal" : "snapshot");
    ExpectRefusedForTheBudget(*s, *st, *l, Window("d", 64));
    ASSERT_TRUE(Call(*s, RemoveWindow("c")).has_fit());
    ASSERT_TRUE(Call(*s, Window("d", 64)).has_fit());
    ExpectRefusedForTheBudget(*s, *st, *l, Window("e", 32));
  }
}

}  // namespace
}  // namespace gradientd::service
