#include "cli/gradctl.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>
#include <span>
#include <string_view>

#include "cli/bench/bench.h"
#include "cli/command.h"
#include "cli/global_flags.h"
#include "cli/produce/produce.h"
#include "cli/query/query_commands.h"
#include "cli/replay/inspect.h"
#include "cli/replay/replay.h"
#include "cli/watch/watch.h"
#include "client/client.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

constexpr auto kStyle =
    po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;

int Bench(CommandContext& context, const po::variables_map& vm) {
  if (context.flags.server.find(',') != std::string::npos) {
    return context.Usage("bench measures one server: give --server a single HOST:PORT");
  }
  BenchConfig config;
  if (Status s = ParseBenchConfig(vm, &config); !s.ok()) return context.Usage(s.message());
  // The benchmark's connections and baselines are plain TCP, its scrapes plain HTTP.
  if (context.flags.tls) {
    return context.Usage(config.scrape_interval.count() > 0
                             ? "--tls is not supported by bench (it measures plaintext only; "
                               "--scrape-interval scrapes /metrics over plain HTTP)"
                             : "--tls is not supported by bench (it measures plaintext only)");
  }
  if (int rc = context.MakeConnectOptions(&config.connect); rc != kExitOk) return rc;
  return RunBench(config, context.out, context.err);
}

Command BenchCommand() {
  return {"bench",
          "[--spawn-server] [--producers P] [--batch B] [--seconds S] ...",
          "measure ingest throughput and query latency",
          "Runs P producer connections sending B-point batches for S seconds (pipelined, at most\n"
          "W unacknowledged each) while another connection sends gradient queries at a steady\n"
          "rate, then reports ingest points/s (overall, and the spread of its half-second rates)\n"
          "and MB/s of payload (16 bytes a point), batches/s, and query round-trip p50/p99/p99.9\n"
          "idle and under ingest. --spawn-server starts a private gradientd and reports its CPU\n"
          "time and peak RSS; the baselines are a discard server in gradctl fed by the same\n"
          "producers and a TCP echo server in a child process, probed at the same ticks as the\n"
          "queries. --scrape-interval GETs the server's /metrics on schedule meanwhile and\n"
          "reports the scrapes. --json prints one JSON object. Writes to the series 'bench'\n"
          "unless --series is given.",
          &AddBenchOptions,
          &Bench};
}

// Every command, in the order of the usage.
std::span<const Command> Commands() {
  static const Command kCommands[] = {
      ProduceCommand(),   GradientCommand(), FitCommand(),     StepCommand(),
      ConfigureCommand(), ResetCommand(),    ListCommand(),    WatchCommand(),
      BenchCommand(),     ReplayCommand(),   InspectCommand(),
  };
  return kCommands;
}

const Command* FindCommand(std::string_view name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

po::options_description CommandOptions(const Command& command) {
  po::options_description d(std::string(command.name) + " options", kHelpWidth,
                            kHelpDescriptionWidth);
  command.add_options(&d);
  return d;
}

// ---------------------------------------------------------------------------
// Usage.

void PrintUsage(std::ostream& out, const po::options_description& global) {
  out << "Usage: gradctl [GLOBAL OPTIONS] COMMAND [OPTIONS]\n\n"
         "The command-line client of gradientd, the streaming gradient server.\n\n"
         "Commands:\n";
  std::size_t width = 0;
  for (const Command& c : Commands()) width = std::max(width, c.name.size());
  for (const Command& c : Commands()) {
    out << "  " << c.name << std::string(width - c.name.size() + 3, ' ') << c.summary << '\n';
  }
  out << '\n' << global << "\nRun 'gradctl COMMAND --help' for a command's options.\n";
}

void PrintCommandUsage(std::ostream& out, const Command& command,
                       const po::options_description& global) {
  out << "Usage: gradctl [GLOBAL OPTIONS] " << command.name;
  if (!command.synopsis.empty()) out << ' ' << command.synopsis;
  out << "\n\n" << command.description << "\n\n";
  const po::options_description options = CommandOptions(command);
  if (!options.options().empty()) out << options << '\n';
  out << global;
}

// ---------------------------------------------------------------------------
// Parsing.

// Whether `--name` (no '=') takes a value in any of gradctl's options, so
// that the scan for the command word can skip that value.
bool TakesValue(std::string_view name, const po::options_description& global) {
  const auto check = [&](const po::options_description& d) {
    const po::option_description* o = d.find_nothrow(std::string(name), false);
    return o != nullptr && o->semantic()->max_tokens() > 0;
  };
  if (check(global)) return true;
  const auto commands = Commands();
  return std::any_of(commands.begin(), commands.end(),
                     [&](const Command& c) { return check(CommandOptions(c)); });
}

// The position of the command word in args: the first operand, skipping
// options and their values. -1 if there is none.
std::ptrdiff_t FindCommandWord(const std::vector<std::string>& args,
                               const po::options_description& global) {
  bool options_ended = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!options_ended && a == "--") {
      options_ended = true;
      continue;
    }
    if (!options_ended && a.size() > 2 && a.starts_with("--")) {
      if (a.find('=') == std::string::npos && TakesValue(std::string_view(a).substr(2), global)) {
        ++i;
      }
      continue;
    }
    if (!options_ended && a.size() > 1 && a[0] == '-') continue;  // -h
    return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

// No command: only global options, e.g. --help.
int RunWithoutCommand(const std::vector<std::string>& args, const po::options_description& global,
                      const GlobalFlags& flags, std::ostream& out, std::ostream& err) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(global).style(kStyle).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    err << "gradctl: " << e.what() << "\nTry 'gradctl --help'.\n";
    return kExitUsage;
  }
  if (flags.help) {
    PrintUsage(out, global);
    return kExitOk;
  }
  err << "gradctl: no command given\n\n";
  PrintUsage(err, global);
  return kExitUsage;
}

// Parses the command's line (global options included) into *vm; a usage
// error is reported on `err` (returns false).
bool ParseCommandLine(const Command& command, const std::vector<std::string>& args,
                      const po::options_description& global, po::variables_map* vm,
                      std::ostream& err) {
  po::options_description all;
  all.add(global).add(CommandOptions(command));
  po::positional_options_description positional;
  if (command.operands == Operands::kOptionalFile) {
    all.add_options()("file", po::value<std::string>());
    positional.add("file", 1);
  } else if (command.operands == Operands::kFiles) {
    all.add_options()("files", po::value<std::vector<std::string>>());  // FILE...
    positional.add("files", -1);
  }
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).style(kStyle).run(),
              *vm);
    po::notify(*vm);
  } catch (const po::error& e) {
    std::string what = e.what();
    if (what.find("too many positional options") != std::string::npos) {
      what = "unexpected operand (" + std::string(command.name) +
             (command.operands == Operands::kOptionalFile ? " takes at most one FILE)"
                                                          : " takes none)");
    }
    err << "gradctl " << command.name << ": " << what << "\nTry 'gradctl " << command.name
        << " --help'.\n";
    return false;
  }
  return true;
}

}  // namespace

int RunGradctl(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
               std::ostream& err, const std::string& default_server,
               const std::string& default_token) {
  GlobalFlags flags;
  const po::options_description global = GlobalOptions(&flags, default_server, default_token);
  const std::ptrdiff_t word = FindCommandWord(args, global);
  if (word < 0) return RunWithoutCommand(args, global, flags, out, err);

  std::string name = args[static_cast<std::size_t>(word)];
  std::vector<std::string> rest = args;
  rest.erase(rest.begin() + word);
  if (name == "help") {  // gradctl help [COMMAND]
    const auto topic = std::find_if(rest.begin(), rest.end(),
                                    [](const std::string& a) { return !a.starts_with("-"); });
    if (topic == rest.end()) {
      PrintUsage(out, global);
      return kExitOk;
    }
    name = *topic;
    rest = {"--help"};
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    err << "gradctl: unknown command '" << name << "'\nTry 'gradctl --help'.\n";
    return kExitUsage;
  }
  po::variables_map vm;
  if (!ParseCommandLine(*command, rest, global, &vm, err)) return kExitUsage;
  if (flags.help) {
    PrintCommandUsage(out, *command, global);
    return kExitOk;
  }
  CommandContext context{in, out, err, flags, std::string(command->name)};
  if (Status s = CheckGlobalFlags(flags, vm); !s.ok()) return context.Usage(s.message());
  return command->run(context, vm);
}

int RunGradctl(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  const char* env = std::getenv("GRADIENTD_SERVER");
  const std::string default_server =
      env != nullptr && *env != '\0' ? std::string(env) : std::string(client::kDefaultServer);
  const char* token = std::getenv("GRADIENTD_TOKEN");
  return RunGradctl(args, std::cin, out, err, default_server, token != nullptr ? token : "");
}

}  // namespace gradientd::cli
