#include "soak_run.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>

namespace gradientd::soak {

std::vector<std::string> LimitFlags() {
  // clang-format off
  return {
      "--in-memory",
      "--listen", "127.0.0.1:0",
      "--threads", "2",
      "--max-connections", std::to_string(kMaxConnections),
      "--max-frame-bytes", std::to_string(kMaxFrameBytes),
      "--max-queued-bytes", std::to_string(kMaxQueuedBytes),
      "--idle-timeout", std::to_string(kIdleTimeout.count()) + "ms",
      "--request-timeout", std::to_string(kRequestTimeout.count()) + "ms",
      "--write-timeout", std::to_string(kWriteTimeout.count()) + "ms",
  };
  // clang-format on
}

void SoakRun::ConnectWellBehaved(const std::string& address, const client::ConnectOptions& produce,
                                 const client::ConnectOptions& query) {
  for (int i = 0; i < kWellBehaved; ++i) {
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(address, i < kProducers ? produce : query, &c);
    ASSERT_TRUE(s.ok()) << s.message();
    clients.push_back(std::move(c));
  }
}

bool SoakRun::StartProducers() {
  for (std::size_t i = 0; i < kProducers; ++i) {
    threads.emplace_back(RunProducer, std::ref(*producers[i]), std::ref(*clients[i]),
                         seed + static_cast<uint64_t>(i), std::cref(stop), std::ref(problems));
  }
  const auto first_acks_by = Clock::now() + kPatience;
  while (Clock::now() < first_acks_by &&
         std::any_of(producers.begin(), producers.end(),
                     [](const auto& p) { return p->batches_acked == 0 && !p->dropped; })) {
    std::this_thread::sleep_for(10ms);
  }
  const bool producing = std::all_of(producers.begin(), producers.end(),
                                     [](const auto& p) { return p->batches_acked > 0; });
  if (!producing) problems.Add("the producers' first batches were not all acknowledged");
  return producing;
}

void SoakRun::StartQueriers() {
  for (std::size_t i = 0; i < kQueriers; ++i) {
    threads.emplace_back(RunQuerier, std::ref(producers), std::ref(*clients[kProducers + i]),
                         seed + 100 + static_cast<uint64_t>(i), std::cref(stop), std::ref(problems),
                         std::ref(tally));
  }
}

void SoakRun::StartLoop(std::function<void(std::mt19937_64&)> action, Clock::duration pause,
                        int jitter_ms) {
  threads.emplace_back([this, loop_action = std::move(action), pause, jitter_ms,
                        loop_seed = seed + next_loop_seed_++] {
    std::mt19937_64 rng(loop_seed);
    while (!stop) {
      loop_action(rng);
      Pause(pause + std::chrono::milliseconds(
                        static_cast<int64_t>(rng() % static_cast<uint64_t>(jitter_ms))),
            stop);
    }
  });
}

void SoakRun::StopAndJoin() {
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();
  clients.clear();
}

uint64_t SoakRun::PointsAcked() const {
  uint64_t points = 0;
  for (const auto& p : producers) points += p->points_acked;
  return points;
}

std::string AnswerFreshConnection(const std::string& address, const client::ConnectOptions& options,
                                  bool retry_any, std::unique_ptr<client::Client>* fresh,
                                  int* attempts) {
  std::string problem = "no attempt";
  for (const auto by = Clock::now() + kPatience; Clock::now() < by;) {
    ++*attempts;
    fresh->reset();
    if (Status s = client::Client::Connect(address, options, fresh); !s.ok()) {
      problem = s.message();
      fresh->reset();
      if (!retry_any) break;
      std::this_thread::sleep_for(100ms);
      continue;
    }
    v1::Request list;
    list.mutable_list();
    v1::Response r;
    if (Status s = (*fresh)->Call(list, &r); !s.ok()) {
      problem = s.message();
    } else if (r.has_series_list()) {
      return "";
    } else {
      problem = r.ShortDebugString();
      if (!retry_any && !IsRefusal(r)) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  return problem;
}

}  // namespace gradientd::soak
