// gradientd: the streaming gradient server. Parses flags, checks the
// open-file limit, then builds and runs one app::Node until SIGINT/SIGTERM.
#include <iostream>

#include "app/command_line.h"
#include "app/node.h"
#include "app/open_file_limit.h"

int main(int argc, char** argv) {
  using namespace gradientd;
  app::CommandLine command_line;
  if (Status s = app::ParseCommandLine(argc, argv, &command_line); !s.ok()) {
    std::cerr << "gradientd: " << s.message() << "\nTry 'gradientd --help'.\n";
    return 2;
  }
  if (command_line.help) {
    std::cout << command_line.usage;
    return 0;
  }
  if (command_line.version) {
    std::cout << "gradientd " GRADIENTD_VERSION "\n";
    return 0;
  }
  // Checked before anything is opened.
  uint64_t open_files = 0;
  Status files = app::RaiseOpenFileLimit(&open_files);
  if (files.ok()) {
    const app::HttpOptions& http = command_line.node.http;
    files = app::CheckOpenFileLimit(command_line.node.server.max_connections,
                                    http.listen == "off" ? 0 : http.max_connections, open_files);
  }
  if (!files.ok()) {
    std::cerr << "gradientd: " << files.message() << "\n";
    return 2;
  }
  app::Node node(command_line.node, std::cerr);
  // HTTP answers (/healthz, and /readyz "recovering") while Start recovers,
  // so its line comes first.
  Status started = node.Open();
  if (started.ok()) {
    if (const auto http = node.http_endpoint()) {
      std::cout << "gradientd http listening on " << server::FormatEndpoint(*http) << std::endl;
    }
    started = node.Start();
  }
  if (!started.ok()) {
    std::cerr << "gradientd: " << started.message() << "\n";
    return 1;
  }
  node.HandleSignals();
  std::cout << "gradientd listening on " << server::FormatEndpoint(node.endpoint()) << std::endl;
  node.Run();
  if (Status s = node.Finish(); !s.ok()) {
    std::cerr << "gradientd: " << s.message() << "\n";
    return 1;
  }
  std::cerr << "gradientd: stopped\n";
  return 0;
}
