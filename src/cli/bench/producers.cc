#include "cli/bench/producers.h"

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "cli/bench/raw_connection.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::cli::bench {
namespace {

namespace asio = boost::asio;

struct ProducerResult : IngestCounts {
  Status status;
  Clock::time_point finished;
};

// One producer connection: sends batches until the deadline (at least one),
// keeping at most `window` unacknowledged, then collects the
// acknowledgements still in flight.
class Producer {
 public:
  Producer(const ProducerPlan& plan, const std::string& id, RawConnection* connection,
           ProducerResult* result)
      : plan_(plan),
        id_(id),
        fixed_(FixedBatchFields(plan.series, id)),
        connection_(connection),
        result_(result) {}

  void Run() {
    Status status;
    bool first = true;
    while (status.ok() && (first || Running())) {
      first = false;
      status = plan_.expect_acks && in_flight_ >= plan_.window ? Collect() : SendBatch();
    }
    while (status.ok() && plan_.expect_acks && in_flight_ > 0) status = Collect();
    result_->finished = Clock::now();
    if (!status.ok()) {
      result_->status = Status(status.code(), id_ + ": " + status.message());
      plan_.stop->store(true);
    }
    connection_->Close();
  }

 private:
  bool Running() const {
    return !plan_.stop->load(std::memory_order_relaxed) && Clock::now() < plan_.deadline &&
           (plan_.points_limit == 0 ||
            plan_.points_acked->load(std::memory_order_relaxed) < plan_.points_limit);
  }

  Status SendBatch() {
    const std::string& xy = plan_.batch->xy;
    const uint64_t n = result_->batches_sent + 1;
    EncodeHead(fixed_, xy.size(), n, n, &head_);
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head_), asio::buffer(xy)};
    if (Status s = connection_->Write(buffers); !s.ok()) return s;
    result_->batches_sent = n;
    result_->bytes_sent += head_.size() + xy.size();
    if (plan_.expect_acks) ++in_flight_;
    return Status::Ok();
  }

  // Waits for one acknowledgement, then takes those already received.
  Status Collect() {
    std::span<const uint8_t> body;
    if (Status s = connection_->WaitFrame(&body); !s.ok()) return s;
    if (Status s = TakeAck(body); !s.ok()) return s;
    while (in_flight_ > 0) {
      bool got = false;
      if (Status s = connection_->PollFrame(&body, &got); !s.ok()) return s;
      if (!got) break;
      if (Status s = TakeAck(body); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status TakeAck(std::span<const uint8_t> body) {
    if (Status s = CheckResponse(body, v1::Response::kAck, &response_); !s.ok()) return s;
    --in_flight_;
    ++result_->batches_acked;
    result_->points_acked += response_.ack().accepted();
    plan_.points_acked->fetch_add(response_.ack().accepted(), std::memory_order_relaxed);
    return Status::Ok();
  }

  const ProducerPlan& plan_;
  const std::string id_;
  const std::string fixed_;
  RawConnection* connection_;
  ProducerResult* result_;
  std::string head_;
  v1::Response response_;
  uint64_t in_flight_ = 0;
};

Status ConnectAll(const protocol::Endpoint& endpoint, int count,
                  const client::ConnectOptions& options,
                  std::vector<std::unique_ptr<RawConnection>>* connections) {
  for (int i = 0; i < count; ++i) {
    connections->push_back(std::make_unique<RawConnection>());
    if (Status s = connections->back()->Connect(endpoint, options); !s.ok()) return s;
  }
  return Status::Ok();
}

// The producers' results summed; the ingest time runs from `start` to the
// last producer's end.
void Sum(const std::vector<ProducerResult>& results, Clock::time_point start, IngestResult* total) {
  Clock::time_point finished = start;
  for (const ProducerResult& r : results) {
    if (!r.status.ok() && total->status.ok()) total->status = r.status;
    total->Add(r);
    finished = std::max(finished, r.finished);
  }
  total->seconds = Seconds(finished - start);
}

}  // namespace

void IngestCounts::Add(const IngestCounts& other) {
  batches_sent += other.batches_sent;
  batches_acked += other.batches_acked;
  points_acked += other.points_acked;
  bytes_sent += other.bytes_sent;
}

IngestResult RunProducers(const protocol::Endpoint& endpoint, int producers, ProducerPlan plan,
                          double seconds, const std::string& id_prefix,
                          const std::function<void(uint64_t)>& monitor) {
  IngestResult total;
  std::vector<std::unique_ptr<RawConnection>> connections;
  total.status = ConnectAll(endpoint, producers, plan.connect, &connections);
  if (!total.status.ok()) return total;
  total.tcp_congestion = connections.front()->congestion();
  std::atomic<uint64_t> points_acked{0};
  std::atomic<bool> stop{false};
  std::atomic<int> running{producers};
  plan.points_acked = &points_acked;
  plan.stop = &stop;
  std::vector<ProducerResult> results(static_cast<std::size_t>(producers));
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  plan.deadline = start + FromSeconds(seconds);
  for (std::size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      Producer(plan, id_prefix + "-" + std::to_string(i), connections[i].get(), &results[i]).Run();
      running.fetch_sub(1);
    });
  }
  while (running.load() > 0) {
    if (monitor) monitor(points_acked.load());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (std::thread& t : threads) t.join();
  if (monitor) monitor(points_acked.load());
  Sum(results, start, &total);
  return total;
}

}  // namespace gradientd::cli::bench
