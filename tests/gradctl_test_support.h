// What the in-process gradctl tests share: a real server on loopback port 0
// (an in-memory app::Node) and RunGradctl with its streams captured.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cli/gradctl.h"
#include "running_node.h"

namespace gradientd::cli {

// A gradientd (app::Node) on 127.0.0.1:0 over an in-memory service, serving
// on a thread of its own until destroyed.
class TestServer : public gradientd::testing::RunningNode {
 public:
  TestServer() : RunningNode(gradientd::testing::LoopbackNodeOptions()) {
    const Status s = Start();
    EXPECT_TRUE(s.ok()) << s.message();
  }
};

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

inline Result Gradctl(const std::vector<std::string>& args, const std::string& server,
                      const std::string& input = "", const std::string& token = "") {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  Result r;
  r.code = RunGradctl(args, in, out, err, server, token);
  r.out = out.str();
  r.err = err.str();
  return r;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string RevenueCsv() {
  return ReadFile(std::string(GRADIENTD_SOURCE_DIR) + "/tools/demo/revenue.csv");
}

}  // namespace gradientd::cli
