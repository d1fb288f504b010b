// gradientd: the streaming gradient server. Parses flags and runs the server.
#include <cstdio>
#include <iostream>

#include "server/server.h"
#include "server/server_options.h"
#include "service/series_store.h"
#include "service/service.h"

int main(int argc, char** argv) {
  using namespace gradientd;
  server::CommandLine command_line;
  if (Status s = server::ParseCommandLine(argc, argv, &command_line); !s.ok()) {
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
  service::SeriesStore store;
  service::Service service(store);
  server::Server server(command_line.server, service);
  if (Status s = server.Start(); !s.ok()) {
    std::cerr << "gradientd: " << s.message() << "\n";
    return 1;
  }
  server.StopOnSignals();
  std::cout << "gradientd listening on " << server::FormatEndpoint(server.local_endpoint())
            << std::endl;
  server.Run();
  std::cerr << "gradientd: stopped\n";
  return 0;
}
