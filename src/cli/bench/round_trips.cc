#include "cli/bench/round_trips.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <cmath>
#include <cstring>
#include <optional>
#include <span>
#include <thread>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_codec.h"

namespace gradientd::cli {

int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const auto index = static_cast<std::size_t>(std::max(rank, 1.0)) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

namespace bench {
namespace {

constexpr int kWarmupRoundTrips = 20;
// The query, evaluated at an explicit (m, b) so the model's descent does not
// enter the measurement.
constexpr double kQueryM = 2.0;
constexpr double kQueryB = 1.0;

// One connection probed with round trips: the gradient query to gradientd,
// or the same frame to an echo server.
class Prober {
 public:
  Prober(RawConnection* connection, const std::string& series, bool echo)
      : connection_(connection), echo_(echo) {
    v1::GradientQuery* query = request_.mutable_gradient();
    query->set_series(series);
    query->set_m(kQueryM);
    query->set_b(kQueryB);
  }

  // One round trip: from the write of the frame to the whole reply.
  Status RoundTrip(int64_t* ns) {
    request_.set_id(++id_);
    frame_.clear();
    protocol::AppendFrame(request_, &frame_);
    std::span<const uint8_t> body;
    const Clock::time_point t0 = Clock::now();
    if (Status s = connection_->Write(boost::asio::buffer(frame_)); !s.ok()) return s;
    if (Status s = connection_->WaitFrame(&body); !s.ok()) return s;
    const Clock::time_point t1 = Clock::now();
    *ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    return echo_ ? CheckEcho(body) : CheckReply(body);
  }

 private:
  // The echo server returns the frame; its tail is what WaitFrame parsed.
  Status CheckEcho(std::span<const uint8_t> body) const {
    if (body.size() >= frame_.size() ||
        std::memcmp(body.data(), frame_.data() + (frame_.size() - body.size()), body.size()) != 0) {
      return Status::Internal("the echo server sent back other bytes");
    }
    return Status::Ok();
  }

  Status CheckReply(std::span<const uint8_t> body) {
    if (Status s = CheckResponse(body, v1::Response::kGradient, &response_); !s.ok()) return s;
    if (response_.id() != id_) return Status::Internal("a reply to another query");
    return Status::Ok();
  }

  RawConnection* connection_;
  bool echo_;
  v1::Request request_;
  v1::Response response_;
  std::string frame_;
  uint64_t id_ = 0;
};

// Probes with `query` and/or `echo` (either may be empty) at a schedule.
class RoundTripRun {
 public:
  RoundTripRun(const RoundTripPlan& plan, Latencies* latencies, Latencies* echo_latencies)
      : plan_(plan), latencies_(latencies), echo_latencies_(echo_latencies) {
    if (plan.connection != nullptr) query_.emplace(plan.connection, plan.series, false);
    if (plan.echo != nullptr) echo_.emplace(plan.echo, plan.series, true);
  }

  Status Run() {
    if (Status s = WarmUp(); !s.ok()) return s;
    if (Status s = Ticks(); !s.ok()) return s;
    if (query_) std::sort(latencies_->ns.begin(), latencies_->ns.end());
    if (echo_) std::sort(echo_latencies_->ns.begin(), echo_latencies_->ns.end());
    return Status::Ok();
  }

 private:
  Status WarmUp() {
    int64_t ns = 0;
    for (int i = 0; i < kWarmupRoundTrips; ++i) {
      if (query_) {
        if (Status s = query_->RoundTrip(&ns); !s.ok()) return s;
      }
      if (echo_) {
        if (Status s = echo_->RoundTrip(&ns); !s.ok()) return s;
      }
    }
    return Status::Ok();
  }

  Status Ticks() {
    const auto interval = FromSeconds(1.0 / plan_.rate);
    const Clock::time_point start = Clock::now();
    const auto expected =
        static_cast<std::size_t>(std::min(1e7, plan_.rate * Seconds(plan_.end - start) + 16.0));
    if (query_) latencies_->ns.reserve(expected);
    if (echo_) echo_latencies_->ns.reserve(expected);
    for (uint64_t k = 0;; ++k) {
      const Clock::time_point scheduled = start + interval * static_cast<int64_t>(k);
      const Clock::time_point now = Clock::now();
      if (k > 0 && (now >= plan_.end || (plan_.stop != nullptr && plan_.stop->load()))) break;
      if (now < scheduled) {
        std::this_thread::sleep_until(scheduled);
      } else if (now - scheduled > interval) {
        ++latencies_->late;
      }
      if (Status s = Tick(k % 2 == 0); !s.ok()) return s;
    }
    return Status::Ok();
  }

  // The query and the echo, in turn: the query first on even ticks.
  Status Tick(bool query_first) {
    for (int turn = 0; turn < 2; ++turn) {
      Status s =
          (turn == 0) == query_first ? Probe(query_, latencies_) : Probe(echo_, echo_latencies_);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  static Status Probe(std::optional<Prober>& prober, Latencies* latencies) {
    if (!prober) return Status::Ok();
    int64_t ns = 0;
    if (Status s = prober->RoundTrip(&ns); !s.ok()) return s;
    latencies->ns.push_back(ns);
    return Status::Ok();
  }

  const RoundTripPlan& plan_;
  Latencies* latencies_;
  Latencies* echo_latencies_;
  std::optional<Prober> query_, echo_;
};

}  // namespace

Status RunRoundTrips(const RoundTripPlan& plan, Latencies* latencies, Latencies* echo_latencies) {
  return RoundTripRun(plan, latencies, echo_latencies).Run();
}

}  // namespace bench
}  // namespace gradientd::cli
