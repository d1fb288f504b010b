// Windows, decay and event times through the data directory: a restart from
// the journal alone (as after kill -9), from a snapshot plus the journal
// after it, and from a snapshot alone each reproduce every view bit for bit,
// with a recovery clock that says something else entirely.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "durable/data_directory.h"
#include "durable_call.h"
#include "temp_dir.h"
#include "views_test_support.h"

namespace gradientd::durable {
namespace {

using namespace gradientd::testing;  // the view tests' requests and constants

const std::vector<std::string> kNames = {"w", "d", "plain"};

struct Open {
  service::SeriesStore store;
  service::Service service{store};
  std::unique_ptr<DataDirectory> data;
  RecoveryReport report;

  // Recovers with the clock at `recovery_clock`, then serves at a time
  // after every event time of the history.
  Open(const std::string& path, int64_t recovery_clock) {
    now = recovery_clock;
    service.SetClock([this] { return now.load(); });
    DataDirectoryOptions options;
    options.path = path;
    const Status s = DataDirectory::Open(options, service, &data, &report);
    EXPECT_TRUE(s.ok()) << s.message();
    now = kEpoch2023 + 10 * kHour;
  }
  std::atomic<int64_t> now;
  v1::Response Call(const v1::Request& request) {
    return gradientd::testing::CallDurably(service, data.get(), request);
  }
};

// Batches at event times around `t` (some late, one without a time), a step,
// and configures that restart, drop and re-add views.
void MakeHistory(Open& db, int64_t t, int round) {
  for (int i = 0; i < 12; ++i) {
    const int64_t event = t + i * 9 * kMinute - (i % 4 == 3 ? 70 * kMinute : 0);
    for (const std::string& name : kNames) {
      const int64_t stamped = i == 5 ? kNoEventTime : event;
      ASSERT_TRUE(db.Call(TimedIngest(name, stamped, round * 100 + i, 5 + i, "p-" + name,
                                      static_cast<uint64_t>(round * 100 + i + 1)))
                      .has_ack());
    }
    if (i == 6) {
      ASSERT_TRUE(db.Call(ConfigureViews("w", {.window_ns = 2 * kHour})).has_fit());
    }
  }
  v1::Request remove;
  remove.mutable_configure()->set_series("d");
  remove.mutable_configure()->set_remove_decay(true);
  remove.mutable_configure()->set_descent_view(v1::VIEW_ALL);  // steps on it: not removable alone
  ASSERT_TRUE(db.Call(remove).has_fit()) << db.Call(remove).DebugString();
  ASSERT_TRUE(db.Call(TimedIngest("d", t, round)).has_ack());
  ASSERT_TRUE(
      db.Call(ConfigureViews("d", {.half_life_ns = 20 * kMinute, .descent_view = v1::VIEW_DECAYED}))
          .has_fit());
  ASSERT_TRUE(db.Call(TimedIngest("d", t + kHour, round + 1)).has_ack());
  v1::Request step;
  step.mutable_step()->set_series("w");
  step.mutable_step()->set_iterations(7);
  ASSERT_TRUE(db.Call(step).has_step());
}

TEST(DataDirectoryViewsTest, EveryRestartReproducesEveryViewBitForBit) {
  const gradientd::testing::TestDirectory temp("data_directory_views_test");
  const std::string path = (temp.path() / "data").string();
  std::string before;
  {
    Open db(path, kEpoch2023 + 10 * kHour);
    ASSERT_TRUE(db.data);
    ASSERT_TRUE(db.Call(ConfigureViews("w", {.window_ns = kHour, .buckets = 30})).has_fit());
    ASSERT_TRUE(db.Call(ConfigureViews(
                            "d", {.half_life_ns = 15 * kMinute, .descent_view = v1::VIEW_DECAYED}))
                    .has_fit());
    MakeHistory(db, kEpoch2023, 0);
    before = EveryViewBytes(db.service, kNames);
    // No Close: as after kill -9, only the journal is there.
  }
  {
    Open db(path, 42);  // a clock recovery must not use
    ASSERT_TRUE(db.data);
    EXPECT_FALSE(db.report.snapshot);
    EXPECT_GT(db.report.records_replayed, 40u);
    EXPECT_EQ(EveryViewBytes(db.service, kNames), before) << "journal only";
    // Recovery wrote a snapshot; more history goes to the journal after it.
    MakeHistory(db, kEpoch2023 + 3 * kHour, 1);
    before = EveryViewBytes(db.service, kNames);
  }
  {
    Open db(path, -1);
    ASSERT_TRUE(db.data);
    EXPECT_TRUE(db.report.snapshot);
    EXPECT_GT(db.report.records_replayed, 0u);
    EXPECT_EQ(EveryViewBytes(db.service, kNames), before) << "snapshot and journal";
    ASSERT_TRUE(db.data->Close().ok());
  }
  Open db(path, INT64_MAX);
  ASSERT_TRUE(db.data);
  EXPECT_EQ(db.report.records_replayed, 0u);
  EXPECT_EQ(EveryViewBytes(db.service, kNames), before) << "snapshot only";
}

}  // namespace
}  // namespace gradientd::durable
