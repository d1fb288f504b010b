// TestDirectory: a fresh, empty directory for the running test, named after
// `prefix`, this process and the test, so parallel runs never share one.
// Removed with everything in it when the object goes. One thread.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace gradientd::testing {

class TestDirectory {
 public:
  explicit TestDirectory(const std::string& prefix)
      : path_(std::filesystem::temp_directory_path() /
              (prefix + "." + std::to_string(::getpid()) + "." +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TestDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TestDirectory(const TestDirectory&) = delete;
  TestDirectory& operator=(const TestDirectory&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // `name` inside the directory.
  std::string Path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace gradientd::testing
