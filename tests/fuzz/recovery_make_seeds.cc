// Writes recovery_fuzz's seeds into DIR: real data directories (journals and
// snapshots written by the storage code as it is now) encoded as inputs, see
// recovery_checks.h. tools/fuzz.sh runs it before recovery_fuzz.
//
//   recovery_make_seeds DIR
#include <cstdio>
#include <fstream>
#include <string>

#include "fuzz/recovery_checks.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: recovery_make_seeds DIR\n");
    return 2;
  }
  gradientd::fuzz::QuietProtobufLogs();
  const auto seeds = gradientd::fuzz::RecoverySeeds();
  for (size_t i = 0; i < seeds.size(); ++i) {
    const std::string path = std::string(argv[1]) + "/real_directory_" + std::to_string(i);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(seeds[i].data()),
              static_cast<std::streamsize>(seeds[i].size()));
    if (!out) {
      std::fprintf(stderr, "recovery_make_seeds: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  std::printf("recovery_make_seeds: %zu seeds in %s\n", seeds.size(), argv[1]);
  return 0;
}
