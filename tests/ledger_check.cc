// ledger_client check (ledger.h): what the ledgers say each series must
// hold, against every page of the server's listing.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "ledger.h"

namespace ledger {
namespace {

using gradientd::Status;
using gradientd::client::Client;

// What one series must hold, by the ledgers.
struct Expected {
  uint64_t acked_n = 0;
  int64_t acked_sum_x = 0;
  int64_t acked_sum_y = 0;
  uint64_t unknown_n = 0;  // plain batches whose fate is unknown
  uint64_t refused_n = 0;  // batches whose last answer was an Error
  uint64_t refused_batches = 0;
  uint64_t unacked_eo = 0;  // exactly-once batches never acknowledged
};

// The ledgers, summed per series.
struct Tally {
  std::map<std::string, Expected> expected;
  std::vector<std::string> problems;  // exactly-once batches never acknowledged
  uint64_t acked_batches = 0;
  uint64_t unacked_reported = 0;
};

bool Near(double actual, double expected) {
  return std::fabs(actual - expected) <= 1e-9 * std::max(1.0, std::fabs(expected));
}

// With eo_unacked_ok (before the exactly-once producers resent), their
// unacknowledged batches are unknown, not yet a problem.
Tally TallyLedgers(const std::vector<Batch>& batches, bool eo_unacked_ok) {
  Tally tally;
  for (const Batch& b : batches) {
    Expected& e = tally.expected[b.series];
    if (Acknowledged(b.state)) {
      e.acked_n += b.n;
      e.acked_sum_x += b.sum_x;
      e.acked_sum_y += b.sum_y;
      ++tally.acked_batches;
    } else if (b.exactly_once) {
      ++e.unacked_eo;
      e.unknown_n += b.n;
      if (b.state == State::kRefused) ++e.refused_batches, e.refused_n += b.n;
      if (!eo_unacked_ok && ++tally.unacked_reported <= 10) {
        tally.problems.push_back("exactly-once producer " + b.label + " sequence " +
                                 std::to_string(b.seq) + " (series " + b.series +
                                 ") was never acknowledged: " + StateName(b.state) +
                                 (b.error.empty() ? "" : " (" + b.error + ")"));
      }
    } else if (b.state == State::kRefused) {
      e.refused_n += b.n;
      ++e.refused_batches;
    } else {
      e.unknown_n += b.n;
    }
  }
  return tally;
}

// Every page of the server's listing, into `pages`.
Status ListEveryPage(const std::string& server, std::vector<v1::Response>* pages) {
  std::unique_ptr<Client> client;
  Status s = Client::Connect(server, &client);
  for (std::string token; s.ok();) {
    v1::Request request;
    request.mutable_list()->set_page_token(token);
    request.mutable_list()->set_page_size(100);  // several pages in the torture test
    v1::Response& response = pages->emplace_back();
    s = client->Call(request, &response);
    if (s.ok() && !response.has_series_list()) s = gradientd::client::ResponseStatus(response);
    if (!s.ok()) break;
    token = response.series_list().next_page_token();
    if (token.empty()) break;
  }
  return s;
}

// What is wrong with series `name` holding `n` points (its fit, null when
// the server does not have it) against `e`; empty when nothing.
std::string SeriesProblem(const std::string& name, const Expected& e, uint64_t n,
                          const v1::FitReply* fit) {
  const std::string head = "series " + name + ": n after restart " + std::to_string(n) +
                           ", acknowledged " + std::to_string(e.acked_n);
  if (n < e.acked_n) {
    return head + ": " + std::to_string(e.acked_n - n) + " acknowledged points lost";
  }
  if (n > e.acked_n + e.unknown_n) {
    std::string why = std::to_string(n - e.acked_n) + " points more than acknowledged";
    if (e.unknown_n > 0) why += " (and only " + std::to_string(e.unknown_n) + " unknown)";
    if (e.refused_n > 0) {
      why += "; " + std::to_string(e.refused_n) + " points in " +
             std::to_string(e.refused_batches) +
             " batches were answered with Error here: refused batches came back";
    } else {
      why += ": points counted twice";
    }
    return head + ": " + why;
  }
  if (e.unknown_n == 0 && n > 0) {
    const double mx = static_cast<double>(e.acked_sum_x) / static_cast<double>(n);
    const double my = static_cast<double>(e.acked_sum_y) / static_cast<double>(n);
    if (!Near(fit->mean_x(), mx) || !Near(fit->mean_y(), my)) {
      char text[200];
      std::snprintf(text, sizeof text,
                    ": n matches but mean_x %.17g, mean_y %.17g differ from the "
                    "acknowledged points' %.17g, %.17g",
                    fit->mean_x(), fit->mean_y(), mx, my);
      return head + text;
    }
  }
  return "";
}

// Prints the summary and the problems; returns the exit status.
int Report(const Tally& tally, std::vector<std::string> problems, size_t batches,
           uint64_t total_acked, uint64_t total_n) {
  std::printf("ledger_client check: %zu series, %zu batches in the ledger (%" PRIu64
              " acknowledged), %" PRIu64 " acknowledged points, %" PRIu64 " points on the server\n",
              tally.expected.size(), batches, tally.acked_batches, total_acked, total_n);
  const size_t shown = std::min<size_t>(problems.size(), 25);
  for (size_t i = 0; i < shown; ++i) std::printf("MISMATCH: %s\n", problems[i].c_str());
  if (problems.size() > shown) {
    std::printf("MISMATCH: ... and %zu more\n", problems.size() - shown);
  }
  if (tally.unacked_reported > 10) {
    problems.push_back("... " + std::to_string(tally.unacked_reported - 10) +
                       " more exactly-once batches never acknowledged");
  }
  if (!problems.empty()) {
    std::printf("ledger_client check: FAILED: %zu differences between the server and the ledger\n",
                problems.size());
    return 1;
  }
  std::printf("ledger_client check: the server's state is exactly the acknowledged ledger\n");
  return 0;
}

}  // namespace

int Check(const Options& o) {
  std::vector<Batch> batches;
  auto paths = o.values.count("ledger") ? o.values.at("ledger") : std::vector<std::string>{};
  for (const auto& path : paths) {
    if (!ReadLedger(path, &batches)) return 2;
  }
  const Tally tally = TallyLedgers(batches, o.Int("eo-unacked-ok", 0) != 0);
  std::vector<v1::Response> pages;
  const Status s = ListEveryPage(o.Get("server"), &pages);
  if (!s.ok()) {
    std::cerr << "ledger_client check: cannot list the series: " << s.message() << "\n";
    return 2;
  }
  std::map<std::string, const v1::FitReply*> actual;
  for (const v1::Response& page : pages) {
    for (const auto& fit : page.series_list().series()) actual[fit.series()] = &fit;
  }

  std::vector<std::string> problems = tally.problems;
  for (const auto& [name, fit] : actual) {
    if (!tally.expected.count(name)) {
      problems.push_back("series " + name + ": n " + std::to_string(fit->n()) +
                         " after restart, but the ledger never sent to it");
    }
  }
  uint64_t total_acked = 0, total_n = 0;
  for (const auto& [name, e] : tally.expected) {
    const auto it = actual.find(name);
    const v1::FitReply* fit = it == actual.end() ? nullptr : it->second;
    const uint64_t n = fit == nullptr ? 0 : fit->n();
    total_acked += e.acked_n;
    total_n += n;
    std::string problem = SeriesProblem(name, e, n, fit);
    if (!problem.empty()) problems.push_back(std::move(problem));
  }
  return Report(tally, std::move(problems), batches.size(), total_acked, total_n);
}

}  // namespace ledger
