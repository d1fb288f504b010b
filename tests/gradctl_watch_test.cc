// gradctl watch against a real server on port 0: the plain-line output of
// --count refreshes parsed back into rows; ingest rates made exact by a
// test environment whose clock advances by the interval and which ingests
// between refreshes; resets; --limit, --sort and the bound on a refresh's
// listing; bad flags; an unreachable server and one going away mid-watch;
// and the real gradctl binary on a pseudo-terminal (redraw in place, the
// terminal's size, the cursor restored on SIGINT).
#include "cli/watch/watch.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/output.h"
#include "gradctl_test_support.h"

namespace gradientd::cli {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// Parsing the plain output back.

struct Block {
  std::string heading;
  std::vector<std::map<std::string, std::string>> rows;  // column name -> cell
  std::string more;  // the "... and K more" line, if any
};

const std::vector<std::string> kColumns = {"N",         "RATE/S",    "LS M", "LS B", "DESCENT M",
                                           "DESCENT B", "LOSS",      "R2",   "STEPS"};

std::string Trim(const std::string& s) {
  const auto first = s.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(' ') - first + 1);
}

// Right-aligned columns end where their header ends; the series name is
// the row's first word (the test's names have no spaces).
std::map<std::string, std::string> ParseRow(const std::string& header, const std::string& line) {
  std::map<std::string, std::string> row;
  std::size_t previous_end = line.find(' ');
  row["SERIES"] = line.substr(0, previous_end);
  std::size_t search_from = 6;  // after "SERIES"
  for (const std::string& column : kColumns) {
    const std::size_t end = header.find(column, search_from) + column.size();
    row[column] = Trim(line.substr(previous_end, end - previous_end));
    previous_end = end;
    search_from = end;
  }
  return row;
}

std::vector<Block> ParseBlocks(const std::string& out) {
  std::vector<Block> blocks;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    Block block;
    block.heading = line;
    std::string header;
    std::getline(lines, header);
    EXPECT_TRUE(header.starts_with("SERIES")) << header;
    header = std::regex_replace(header, std::regex("R²"), "R2");
    while (std::getline(lines, line) && !line.empty()) {
      if (line.starts_with("... ")) {
        block.more = line;
      } else {
        block.rows.push_back(ParseRow(header, line));
      }
    }
    blocks.push_back(std::move(block));
  }
  return blocks;
}

// The block's row of `series`, or an empty map.
std::map<std::string, std::string> RowOf(const Block& block, const std::string& series) {
  for (const auto& row : block.rows) {
    if (row.at("SERIES") == series) return row;
  }
  return {};
}

// "x,y" lines on y = 2x + 1, x from `first`.
std::string Line(int points, int first = 0) {
  std::string csv = "x,y\n";
  for (int i = first; i < first + points; ++i) {
    csv += std::to_string(i) + "," + std::to_string(2 * i + 1) + "\n";
  }
  return csv;
}

// ---------------------------------------------------------------------------
// A world the test controls: the clock advances by exactly the interval in
// Wait, which first runs the test's hook (an ingest, a stop).

class TestEnvironment : public WatchEnvironment {
 public:
  std::chrono::steady_clock::time_point Now() override { return now_; }
  int64_t UnixNanos() override { return 1'700'000'000'000'000'000; }
  bool Wait(std::chrono::nanoseconds interval) override {
    ++waits_;
    if (between_refreshes) between_refreshes(waits_);
    now_ += interval;
    return true;
  }
  bool Interrupted() override { return false; }
  bool IsTerminal() override { return false; }
  TerminalSize Size() override { return {}; }

  std::function<void(int wait)> between_refreshes;

 private:
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};
  int waits_ = 0;
};

class GradctlWatchTest : public ::testing::Test {
 protected:
  Result Run(const std::vector<std::string>& args) { return Gradctl(args, server_.address()); }
  void Produce(const std::string& series, int points, int first = 0) {
    const Result r = Gradctl({"--series", series, "produce"}, server_.address(), Line(points, first));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  // RunWatch with `config` in the test's environment.
  Result Watch(const WatchConfig& config, TestEnvironment& environment,
               const std::string& server = "") {
    std::istringstream in;
    std::ostringstream out;
    std::ostringstream err;
    GlobalFlags flags;
    flags.server = server.empty() ? server_.address() : server;
    CommandContext context{in, out, err, flags, "watch"};
    Result r;
    r.code = RunWatch(context, config, environment);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  TestServer server_;
};

TEST_F(GradctlWatchTest, EveryRefreshIsAPlainBlockWithEverySeriesAndNoEscapes) {
  Produce("alpha", 10);
  Produce("beta", 4);
  Produce("gamma", 1);
  const Result r = Run({"watch", "--count", "3", "--interval", "100ms"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  const std::vector<Block> blocks = ParseBlocks(r.out);
  ASSERT_EQ(blocks.size(), 3u) << r.out;
  const std::regex heading(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  )" + server_.address() +
                           "  view all  3 series  every 100ms$");
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const Block& block = blocks[i];
    EXPECT_TRUE(std::regex_match(block.heading, heading)) << block.heading;
    ASSERT_EQ(block.rows.size(), 3u) << r.out;
    EXPECT_EQ(block.rows[0].at("SERIES"), "alpha");
    EXPECT_EQ(block.rows[1].at("SERIES"), "beta");
    EXPECT_EQ(block.rows[2].at("SERIES"), "gamma");
    for (const auto& row : block.rows) {
      // Nothing is ingested meanwhile: blank first, then exactly 0.
      EXPECT_EQ(row.at("RATE/S"), i == 0 ? "" : "0") << row.at("SERIES");
    }
    const auto alpha = RowOf(block, "alpha");
    EXPECT_EQ(alpha.at("N"), "10");
    EXPECT_EQ(alpha.at("LS M"), "2");
    EXPECT_EQ(alpha.at("LS B"), "1");
    EXPECT_EQ(alpha.at("R2"), "1");
    EXPECT_EQ(alpha.at("STEPS"), "1");  // one batch, one step at ingest
    EXPECT_EQ(RowOf(block, "beta").at("N"), "4");
    // One point: no spread in x, so no least-squares line and no R².
    const auto gamma = RowOf(block, "gamma");
    EXPECT_EQ(gamma.at("LS M"), "-");
    EXPECT_EQ(gamma.at("R2"), "-");
  }
}

TEST_F(GradctlWatchTest, TheRateIsThePointsIngestedBetweenRefreshesOverTheInterval) {
  Produce("a", 10);
  Produce("b", 3);
  TestEnvironment environment;
  environment.between_refreshes = [&](int wait) {
    if (wait == 1) Produce("a", 10, 10);
    if (wait == 2) {
      Produce("a", 30, 20);
      Produce("c", 5);
    }
  };
  WatchConfig config;
  config.count = 3;
  config.interval = 2s;
  const Result r = Watch(config, environment);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Block> blocks = ParseBlocks(r.out);
  ASSERT_EQ(blocks.size(), 3u) << r.out;
  EXPECT_EQ(RowOf(blocks[0], "a").at("RATE/S"), "");
  EXPECT_EQ(RowOf(blocks[0], "b").at("RATE/S"), "");
  EXPECT_EQ(RowOf(blocks[1], "a").at("RATE/S"), "5");  // 10 points in 2 s
  EXPECT_EQ(RowOf(blocks[1], "a").at("N"), "20");
  EXPECT_EQ(RowOf(blocks[1], "b").at("RATE/S"), "0");
  EXPECT_TRUE(RowOf(blocks[1], "c").empty());
  EXPECT_EQ(RowOf(blocks[2], "a").at("RATE/S"), "15");  // 30 points in 2 s
  EXPECT_EQ(RowOf(blocks[2], "a").at("N"), "50");
  EXPECT_EQ(RowOf(blocks[2], "c").at("RATE/S"), "");  // new since the last refresh
  EXPECT_EQ(RowOf(blocks[2], "c").at("N"), "5");
}

TEST_F(GradctlWatchTest, AResetShowsAsARestartAndNeverAsANegativeRate) {
  Produce("s", 100);
  TestEnvironment environment;
  environment.between_refreshes = [&](int wait) {
    if (wait == 1) {
      ASSERT_EQ(Run({"--series", "s", "reset"}).code, 0);
      Produce("s", 10);
    }
    if (wait == 2) Produce("s", 4, 10);
  };
  WatchConfig config;
  config.count = 3;
  config.interval = 1s;
  const Result r = Watch(config, environment);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Block> blocks = ParseBlocks(r.out);
  ASSERT_EQ(blocks.size(), 3u) << r.out;
  EXPECT_EQ(RowOf(blocks[1], "s").at("N"), "10");
  EXPECT_EQ(RowOf(blocks[1], "s").at("RATE/S"), "restart");
  EXPECT_EQ(RowOf(blocks[2], "s").at("RATE/S"), "4");  // rated again from the restart
  for (const Block& block : blocks) {
    EXPECT_FALSE(RowOf(block, "s").at("RATE/S").starts_with("-"));
  }
}

TEST_F(GradctlWatchTest, LimitShowsTheTopRowsOfTheSortAndCountsTheRest) {
  for (int i = 1; i <= 5; ++i) Produce("s" + std::to_string(i), 2 * i);
  const Result r = Run({"watch", "--count", "1", "--interval", "1ms", "--sort", "n", "--limit",
                        "2", "--prefix", "s"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Block> blocks = ParseBlocks(r.out);
  ASSERT_EQ(blocks.size(), 1u);
  ASSERT_EQ(blocks[0].rows.size(), 2u) << r.out;
  EXPECT_EQ(blocks[0].rows[0].at("SERIES"), "s5");
  EXPECT_EQ(blocks[0].rows[1].at("SERIES"), "s4");
  EXPECT_EQ(blocks[0].more, "... and 3 more series");
  EXPECT_NE(blocks[0].heading.find("5 series starting 's'"), std::string::npos);
}

TEST_F(GradctlWatchTest, ARefreshListsAtMostItsBoundFollowingPages) {
  for (const char* name : {"e", "d", "c", "b", "a"}) Produce(name, 2);
  TestEnvironment environment;
  WatchConfig config;
  config.count = 1;
  config.max_listed = 3;
  config.page_size = 2;  // two pages: 2 + 1
  const Result r = Watch(config, environment);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Block> blocks = ParseBlocks(r.out);
  ASSERT_EQ(blocks.size(), 1u);
  ASSERT_EQ(blocks[0].rows.size(), 3u) << r.out;
  EXPECT_EQ(blocks[0].rows[2].at("SERIES"), "c");
  EXPECT_EQ(blocks[0].more, "... and more not listed (narrow with --prefix)");
  EXPECT_NE(blocks[0].heading.find("  3+ series"), std::string::npos) << blocks[0].heading;
}

TEST_F(GradctlWatchTest, TheWindowViewShowsItsOwnCountButRatesAllHistory) {
  ASSERT_EQ(Run({"--series", "w", "configure", "--window", "1h"}).code, 0);
  Produce("w", 6);
  Produce("plain", 6);
  TestEnvironment environment;
  environment.between_refreshes = [&](int) { Produce("w", 4, 6); };
  WatchConfig config;
  config.count = 2;
  config.view = v1::VIEW_WINDOW;
  const Result r = Watch(config, environment);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Block> blocks = ParseBlocks(r.out);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(RowOf(blocks[1], "w").at("N"), "10");
  EXPECT_EQ(RowOf(blocks[1], "w").at("RATE/S"), "4");
  EXPECT_EQ(RowOf(blocks[1], "plain").at("N"), "6");  // no window: shown with all
}

TEST_F(GradctlWatchTest, BadFlagsAreUsageErrorsNamingTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--interval", "0"}, "--interval must be from 1ms to 24h"},
      {{"--interval", "5x"}, "--interval: bad duration '5x'"},
      {{"--interval", "25h"}, "--interval must be from 1ms to 24h"},
      {{"--count", "-1"}, "--count must be >= 0"},
      {{"--limit", "0"}, "--limit must be between 1 and 10000"},
      {{"--sort", "speed"}, "--sort must be name, n or rate, got 'speed'"},
      {{"--view", "nope"}, "--view must be all, window or decayed"},
      {{"--json"}, "--json is not supported"},
      {{"--count", "x"}, "the argument ('x') for option '--count' is invalid"},
  };
  for (const auto& [flags, message] : cases) {
    std::vector<std::string> args = {"watch"};
    args.insert(args.end(), flags.begin(), flags.end());
    const Result r = Run(args);
    EXPECT_EQ(r.code, 2) << flags[0];
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << flags[0];
  }
}

TEST_F(GradctlWatchTest, AnUnreachableServerIsAFailureSayingSo) {
  std::string address;
  {
    TestServer gone;
    address = gone.address();
  }
  const Result r = Gradctl({"watch", "--count", "2"}, address);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot connect to " + address), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(GradctlWatchTest, AServerGoingAwayMidWatchEndsItWithExitOne) {
  std::optional<TestServer> going;
  going.emplace();
  const std::string address = going->address();
  ASSERT_EQ(Gradctl({"--series", "s", "produce"}, address, Line(3)).code, 0);
  TestEnvironment environment;
  environment.between_refreshes = [&](int) { going.reset(); };  // every connection closed
  WatchConfig config;
  config.count = 5;
  const Result r = Watch(config, environment, address);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("lost the server at " + address + " after 1 refresh: "),
            std::string::npos)
      << r.err;
  EXPECT_EQ(ParseBlocks(r.out).size(), 1u) << r.out;
}

// ---------------------------------------------------------------------------
// Pure parts.

v1::FitReply FitWithCounts(const std::string& name, uint64_t view_n, uint64_t all_n) {
  v1::FitReply fit;
  fit.set_series(name);
  fit.set_n(view_n);
  fit.add_views()->mutable_coverage()->set_n(all_n);  // VIEW_ALL first
  fit.mutable_views(0)->mutable_coverage()->set_view(v1::VIEW_ALL);
  return fit;
}

TEST(WatchTableTest, RatesFollowAllHistoryNotAWindowThatLosesPoints) {
  RateTracker tracker;
  tracker.Update({FitWithCounts("w", 50, 100)}, 0s);
  const auto rows = tracker.Update({FitWithCounts("w", 20, 130)}, 3s);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].rate.has_value());
  EXPECT_EQ(*rows[0].rate, 10.0);
  EXPECT_FALSE(rows[0].restarted);
  const auto after_reset = tracker.Update({FitWithCounts("w", 5, 5)}, 1s);
  EXPECT_TRUE(after_reset[0].restarted);
  EXPECT_FALSE(after_reset[0].rate.has_value());
}

TEST(WatchTableTest, NumbersAreCompact) {
  EXPECT_EQ(FormatCompact(0.0), "0");
  EXPECT_EQ(FormatCompact(-0.0), "0");
  EXPECT_EQ(FormatCompact(10.388111888), "10.3881");
  EXPECT_EQ(FormatCompact(-1778.333333), "-1778.33");
  EXPECT_EQ(FormatCompact(1.5e-7), "1.5e-7");
  EXPECT_EQ(FormatCompact(2.3e12), "2.3e12");
  EXPECT_EQ(FormatCompact(1e100), "1e100");
}

TEST(WatchTableTest, TruncationCountsCodePointsAndMarksTheCut) {
  EXPECT_EQ(TruncateToWidth("abcdef", 6), "abcdef");
  EXPECT_EQ(TruncateToWidth("abcdefg", 6), "abcde…");
  EXPECT_EQ(TruncateToWidth("ééééééé", 4), "ééé…");
  EXPECT_EQ(DisplayWidth(TruncateToWidth("ééééééé", 4)), 4u);
  EXPECT_EQ(TruncateToWidth("abc", 0), "");
}

TEST(WatchTableTest, AFrameFitsTheWidthByCuttingNames) {
  std::vector<WatchRow> rows(1);
  rows[0].fit = FitWithCounts(std::string(200, 'n'), 7, 7);
  FrameLayout layout;
  layout.heading = "heading";
  layout.width = 70;
  for (const std::string& line : RenderFrame(rows, false, layout)) {
    EXPECT_LE(DisplayWidth(line), 70u) << line;
  }
  EXPECT_NE(RenderFrame(rows, false, layout)[2].find("…"), std::string::npos);
}

// ---------------------------------------------------------------------------
// The real binary on a pseudo-terminal.

struct PtyRun {
  std::string output;
  int status = -1;
};

void ExecGradctl(const std::vector<std::string>& args) {
  std::vector<char*> argv = {const_cast<char*>(GRADCTL_BINARY)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(GRADCTL_BINARY, argv.data());
  _exit(127);
}

// Reads the child's output from `fd` until it closes it; once the output
// contains `signal_after` (if not empty) sends SIGINT. Gives up (kills it)
// after a generous deadline, a watchdog only.
PtyRun Collect(pid_t pid, int fd, const std::string& signal_after) {
  PtyRun run;
  bool signalled = false;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t got = read(fd, buf, sizeof buf);
    if (got <= 0) break;  // EOF, or EIO: the child closed the terminal
    run.output.append(buf, static_cast<std::size_t>(got));
    if (!signal_after.empty() && !signalled &&
        run.output.find(signal_after) != std::string::npos) {
      kill(pid, SIGINT);
      signalled = true;
    }
  }
  if (std::chrono::steady_clock::now() >= deadline) kill(pid, SIGKILL);
  close(fd);
  waitpid(pid, &run.status, 0);
  return run;
}

// gradctl with `args` on a new pseudo-terminal of 60x10.
PtyRun RunOnPty(const std::vector<std::string>& args, const std::string& signal_after = "") {
  winsize size{};
  size.ws_col = 60;
  size.ws_row = 10;
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, &size);
  if (pid == 0) ExecGradctl(args);
  EXPECT_GT(pid, 0);
  if (pid <= 0) return {};
  return Collect(pid, master, signal_after);
}

// gradctl with `args`, its standard output a pipe.
PtyRun RunOnPipe(const std::vector<std::string>& args, const std::string& signal_after) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    ExecGradctl(args);
  }
  close(fds[1]);
  EXPECT_GT(pid, 0);
  if (pid <= 0) return {};
  return Collect(pid, fds[0], signal_after);
}

// The text of the last frame: after the last cursor-home, escapes removed.
std::vector<std::string> LastFrameLines(const std::string& output) {
  std::string frame = output.substr(output.rfind(std::string(kHome)));
  frame = std::regex_replace(frame, std::regex("\x1b\\[[0-9;?]*[A-Za-z]"), "");
  std::vector<std::string> lines;
  std::istringstream in(frame);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

TEST_F(GradctlWatchTest, OnATerminalItRedrawsInPlaceFittedToTheTerminal) {
  Produce(std::string(50, 'a') + "-long-name", 3);
  for (int i = 0; i < 11; ++i) Produce("s" + std::to_string(10 + i), 2);
  const PtyRun run =
      RunOnPty({"--server", server_.address(), "watch", "--count", "2", "--interval", "10ms"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.output;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.output;
  EXPECT_NE(run.output.find(std::string(kHideCursor) + std::string(kHomeAndClear)),
            std::string::npos);
  EXPECT_TRUE(run.output.find(std::string(kShowCursor)) != std::string::npos);
  EXPECT_GT(run.output.rfind(std::string(kShowCursor)), run.output.rfind(std::string(kHome)));
  const std::vector<std::string> lines = LastFrameLines(run.output);
  // 10 rows: the heading, the table's header, 7 series, "... and K more".
  ASSERT_EQ(lines.size(), 10u) << run.output;
  for (const std::string& line : lines) EXPECT_LE(DisplayWidth(line), 60u) << line;
  EXPECT_NE(lines[2].find("aaaaa…"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[9], "... and 5 more series");
}

TEST_F(GradctlWatchTest, InterruptedOnATerminalItRestoresTheCursorAndExitsZero) {
  Produce("s", 3);
  const PtyRun run =
      RunOnPty({"--server", server_.address(), "watch", "--interval", "50ms"}, "SERIES");
  ASSERT_TRUE(WIFEXITED(run.status)) << run.output;
  EXPECT_EQ(WEXITSTATUS(run.status), 0);
  EXPECT_NE(run.output.find(std::string(kShowCursor)), std::string::npos) << run.output;
  EXPECT_GT(run.output.rfind(std::string(kShowCursor)), run.output.rfind(std::string(kHome)));
}

}  // namespace
}  // namespace gradientd::cli

namespace gradientd::cli {
namespace {

TEST_F(GradctlWatchTest, InterruptedOnAPipeItEndsAfterWholeBlocksAndExitsZero) {
  Produce("s", 3);
  const PtyRun run =
      RunOnPipe({"--server", server_.address(), "watch", "--interval", "10ms"}, "SERIES");
  ASSERT_TRUE(WIFEXITED(run.status)) << run.output;
  EXPECT_EQ(WEXITSTATUS(run.status), 0);
  EXPECT_EQ(run.output.find('\x1b'), std::string::npos);
  EXPECT_TRUE(run.output.ends_with("\n\n")) << run.output;
  const std::vector<Block> blocks = ParseBlocks(run.output);
  ASSERT_GE(blocks.size(), 1u);
  for (const Block& block : blocks) EXPECT_EQ(RowOf(block, "s").at("N"), "3");
}

}  // namespace
}  // namespace gradientd::cli
