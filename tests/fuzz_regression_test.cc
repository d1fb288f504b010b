// Every fuzzer seed (tests/fuzz/corpus/<target>/) and every input a fuzzer
// ever crashed on (tests/fuzz/regressions/<target>/), through the fuzzers'
// own checks, on every normal test run. One test case per file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz/frame_decoder_checks.h"
#include "fuzz/recovery_checks.h"
#include "fuzz/request_path_checks.h"

namespace gradientd::fuzz {
namespace {

namespace fs = std::filesystem;

struct FuzzInput {
  std::string target;  // frame_decoder, request_path or recovery
  fs::path path;
};

// How GoogleTest names the parameter (instead of its bytes).
void PrintTo(const FuzzInput& input, std::ostream* os) { *os << input.path.string(); }

std::vector<FuzzInput> AllInputs() {
  std::vector<FuzzInput> inputs;
  for (const char* target : {"frame_decoder", "request_path", "recovery"}) {
    for (const char* kind : {"corpus", "regressions"}) {
      const fs::path dir = fs::path(GRADIENTD_FUZZ_DIR) / kind / target;
      if (!fs::is_directory(dir)) continue;
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') {
          files.push_back(entry.path());
        }
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) inputs.push_back({target, f});
    }
  }
  return inputs;
}

std::string TestName(const ::testing::TestParamInfo<FuzzInput>& info) {
  const fs::path& p = info.param.path;
  std::string name = p.parent_path().parent_path().filename().string() + "_" + info.param.target +
                     "_" + p.filename().string();
  for (char& c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) c = '_';
  }
  return name;
}

class FuzzInputTest : public ::testing::TestWithParam<FuzzInput> {
 protected:
  void SetUp() override {
    FailHookSlot() = [](const std::string& what) { throw std::runtime_error(what); };
  }
  void TearDown() override { FailHookSlot() = nullptr; }
};

TEST_P(FuzzInputTest, PassesTheFuzzerChecks) {
  const FuzzInput& input = GetParam();
  std::ifstream in(input.path, std::ios::binary);
  ASSERT_TRUE(in) << input.path;
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in),
                                   std::istreambuf_iterator<char>()};
  // An exactly sized copy, as libFuzzer hands it over.
  const std::span<const uint8_t> data(bytes.data(), bytes.size());
  try {
    if (input.target == "frame_decoder") {
      CheckFrameDecoder(data);
    } else if (input.target == "recovery") {
      CheckRecovery(data);
    } else {
      CheckRequestPath(data);
    }
  } catch (const std::runtime_error& e) {
    FAIL() << input.path.string() << ": " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Fuzz, FuzzInputTest, ::testing::ValuesIn(AllInputs()), TestName);

TEST(FuzzCorpusTest, EveryTargetHasSeeds) {
  const auto inputs = AllInputs();
  for (const char* target : {"frame_decoder", "request_path", "recovery"}) {
    EXPECT_TRUE(std::any_of(inputs.begin(), inputs.end(),
                            [&](const FuzzInput& i) {
                              return i.target == target &&
                                     i.path.parent_path().parent_path().filename() == "corpus";
                            }))
        << "no seed corpus for " << target;
  }
}

// recovery_fuzz's seeds made from real data directories now (they follow the
// storage format, so they are not checked in), through its checks.
class RecoverySeedsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FailHookSlot() = [](const std::string& what) { throw std::runtime_error(what); };
  }
  void TearDown() override { FailHookSlot() = nullptr; }
};

TEST_F(RecoverySeedsTest, RecoveryFromRealDataDirectoriesPassesTheFuzzerChecks) {
  try {
    const auto seeds = RecoverySeeds();
    ASSERT_FALSE(seeds.empty());
    for (const auto& seed : seeds) CheckRecovery(seed);
  } catch (const std::runtime_error& e) {
    FAIL() << e.what();
  }
}

}  // namespace
}  // namespace gradientd::fuzz
