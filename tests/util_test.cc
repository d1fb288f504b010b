// The flag grammars both programs share (util/duration.h, util/byte_size.h)
// and process-unique randomness (util/random.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <set>
#include <string>

#include "util/byte_size.h"
#include "util/duration.h"
#include "util/random.h"

namespace gradientd::util {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(DurationTest, Parses) {
  nanoseconds d;
  ASSERT_TRUE(ParseDuration("500ms", &d).ok());
  EXPECT_EQ(d, milliseconds(500));
  ASSERT_TRUE(ParseDuration("30s", &d).ok());
  EXPECT_EQ(d, std::chrono::seconds(30));
  ASSERT_TRUE(ParseDuration("5m", &d).ok());
  EXPECT_EQ(d, std::chrono::minutes(5));
  ASSERT_TRUE(ParseDuration("1h", &d).ok());
  EXPECT_EQ(d, std::chrono::hours(1));
  ASSERT_TRUE(ParseDuration("1.5s", &d).ok());
  EXPECT_EQ(d, milliseconds(1500));
  ASSERT_TRUE(ParseDuration("250us", &d).ok());
  EXPECT_EQ(d, std::chrono::microseconds(250));
  ASSERT_TRUE(ParseDuration("0", &d).ok());
  EXPECT_EQ(d, nanoseconds(0));
}

TEST(DurationTest, Rejects) {
  nanoseconds d;
  for (const char* bad : {"", "10", "s", "-1s", "1.2.3s", "5 s", "5sec", "1e300h", "ms"}) {
    const Status s = ParseDuration(bad, &d);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("bad duration"), std::string::npos) << s.message();
  }
  EXPECT_NE(ParseDuration("10", &d).message().find("a unit is needed"), std::string::npos);
}

TEST(DurationTest, MillisecondOptionsTakeTheSameGrammarButOnlyWholeMilliseconds) {
  milliseconds d{};
  ASSERT_TRUE(ParseDuration("1.5s", &d).ok());
  EXPECT_EQ(d, milliseconds(1500));
  ASSERT_TRUE(ParseDuration("0", &d).ok());
  EXPECT_EQ(d, milliseconds(0));
  ASSERT_TRUE(ParseDuration("5min", &d).ok());
  EXPECT_EQ(d, std::chrono::minutes(5));
  ASSERT_TRUE(ParseDuration("2000us", &d).ok());
  EXPECT_EQ(d, milliseconds(2));
  const Status s = ParseDuration("250us", &d);
  EXPECT_EQ(s.message(), "bad duration '250us': not a whole number of milliseconds");
  EXPECT_EQ(d, milliseconds(2)) << "a refused value leaves the target alone";
  EXPECT_NE(ParseDuration("10", &d).message().find("a unit is needed"), std::string::npos);
}

TEST(ByteSizeTest, ParsesWholeNumbersWithBinaryUnits) {
  std::size_t bytes = 0;
  for (const auto& [text, expected] : {std::pair<const char*, std::size_t>{"65536", 65536},
                                       {"0", 0},
                                       {"7B", 7},
                                       {"64KiB", 64u << 10},
                                       {"16MiB", 16u << 20},
                                       {"1GiB", 1u << 30}}) {
    ASSERT_TRUE(ParseByteSize(text, &bytes).ok()) << text;
    EXPECT_EQ(bytes, expected) << text;
  }
}

TEST(ByteSizeTest, RefusesOtherUnitsFractionsAndOverflowNamingTheText) {
  std::size_t bytes = 123;
  for (const char* bad : {"", "KiB", "-1", "1.5MiB", "64KB", "64 KiB", "1kib",
                          "18446744073709551615GiB", "99999999999999999999"}) {
    const Status s = ParseByteSize(bad, &bytes);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("'" + std::string(bad) + "' is not a size"), std::string::npos)
        << s.message();
  }
  EXPECT_EQ(bytes, 123u);
}

TEST(RandomTest, HexIdsAreSixteenHexDigitsAndDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = RandomHex64();
    ASSERT_EQ(id.size(), 16u) << id;
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(RandomBytes(16).size(), 16u);
  EXPECT_EQ(RandomBytes(3).size(), 3u);
  EXPECT_NE(RandomBytes(16), RandomBytes(16));
}

}  // namespace
}  // namespace gradientd::util
