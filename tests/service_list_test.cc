// Service's List in pages: every series exactly once, bad page requests,
// the reply bound.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "service/service.h"
#include "service_test_support.h"

namespace gradientd::service {
namespace {

// Points 13/14: pages.
TEST(ServiceListTest, PagesListEverySeriesExactlyOnceWhileSeriesAreCreated) {
  SeriesStore store;
  Service service(store);
  std::set<std::string> before;
  for (int i = 0; i < 2500; ++i) {
    const std::string name = "s" + std::to_string(i * 7919 % 2500);
    v1::Response response;
    service.Handle(IngestRequest(name, {1}, {2}), &response);
    ASSERT_TRUE(response.has_ack());
    before.insert(name);
  }
  // A writer creates series all along, before and after the reader's
  // position, while the reader pages through.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 100'000 && !stop; ++i) {
      v1::Response response;
      service.Handle(IngestRequest((i % 2 ? "a" : "t") + std::to_string(i), {1}, {2}), &response);
    }
  });
  for (const uint32_t page_size : {1u, 7u, 1000u, 0u}) {
    SCOPED_TRACE(page_size);
    const std::vector<std::string> names = ListAllNames(service, page_size);
    const std::set<std::string> unique(names.begin(), names.end());
    EXPECT_EQ(unique.size(), names.size()) << "a series listed twice";
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    for (const std::string& name : before) EXPECT_EQ(unique.count(name), 1u) << name;
  }
  stop = true;
  writer.join();
  // Once creation is over, the pages are exactly the series.
  const std::vector<std::string> all = ListAllNames(service, 333);
  EXPECT_EQ(all.size(), store.size());
  // With a prefix: exactly the names that start with it.
  const std::vector<std::string> prefixed = ListAllNames(service, 10, "s1");
  std::size_t expected = 0;
  for (const std::string& name : all) expected += name.starts_with("s1") ? 1u : 0u;
  EXPECT_EQ(prefixed.size(), expected);
  for (const std::string& name : prefixed) EXPECT_TRUE(name.starts_with("s1")) << name;
  // No page_size means a default page, and says there is more.
  v1::Response first;
  service.Handle(ListRequest(0, ""), &first);
  EXPECT_EQ(first.series_list().series_size(), static_cast<int>(kDefaultListPageSize));
  EXPECT_EQ(first.series_list().next_page_token(),
            first.series_list().series(kDefaultListPageSize - 1).series());
}

TEST(ServiceListTest, BadPageSizeOrPageTokenIsInvalidArgument) {
  SeriesStore store;
  Service service(store);
  v1::Response response;
  service.Handle(IngestRequest("s", {1}, {2}), &response);
  const std::vector<std::pair<const char*, v1::Request>> bad = {
      {"page_size over the limit", ListRequest(kMaxListPageSize + 1, "")},
      {"page_size far over", ListRequest(UINT32_MAX, "")},
      {"token not UTF-8", ListRequest(10, "\xff")},
      {"token with a control", ListRequest(10, "a\x01")},
      {"token too long", ListRequest(10, std::string(kMaxSeriesNameBytes + 1, 'a'))},
      {"token outside the prefix", ListRequest(10, "b", "a")},
      {"prefix too long", ListRequest(10, "", std::string(kMaxSeriesNameBytes + 1, 'a'))},
  };
  for (const auto& [what, request] : bad) {
    SCOPED_TRACE(what);
    v1::Response r;
    service.Handle(request, &r);
    ASSERT_TRUE(r.has_error()) << r.DebugString();
    EXPECT_EQ(r.error().code(), v1::Error::INVALID_ARGUMENT);
    EXPECT_FALSE(r.error().message().empty());
  }
  v1::Response r;
  service.Handle(ListRequest(kMaxListPageSize, ""), &r);
  EXPECT_EQ(r.series_list().series_size(), 1);
  EXPECT_TRUE(r.series_list().next_page_token().empty());
}

// The worst case: the longest names, every optional field set, the largest
// page. The reply stays under the documented bound, which is below the
// default --max-queued-bytes (4 MiB) and far below 2 GiB.
TEST(ServiceListTest, ALargestPageOfLongestNamesStaysUnderTheReplyBound) {
  SeriesStore store;
  Service service(store);
  for (int i = 0; i < static_cast<int>(kMaxListPageSize) + 10; ++i) {
    const std::string number = std::to_string(i);
    const std::string name = std::string(kMaxSeriesNameBytes - number.size(), 'n') + number;
    ASSERT_EQ(name.size(), kMaxSeriesNameBytes);
    v1::Response response;
    service.Handle(IngestRequest(name, {1e150, -1e150, 3}, {-1e150, 1e150, 0.1}), &response);
    ASSERT_TRUE(response.has_ack()) << response.DebugString();
  }
  v1::Response response;
  service.Handle(ListRequest(kMaxListPageSize, ""), &response);
  response.set_id(UINT64_MAX);
  ASSERT_TRUE(response.has_series_list());
  EXPECT_GT(response.series_list().series_size(), 100);
  EXPECT_FALSE(response.series_list().next_page_token().empty());
  const std::size_t bound = kMaxListPageBytes + 2 * kMaxSeriesNameBytes + 1024;
  EXPECT_LE(response.ByteSizeLong(), bound);
  EXPECT_LT(bound, std::size_t{4} << 20);
}

}  // namespace
}  // namespace gradientd::service
