// Publisher: publishes the cluster's changes to their shard streams without
// holding up the thread that proposes them, retrying each with its message
// id (stored once) until its deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "jetstream/shard_streams.h"
#include "util/mutex.h"

namespace gradientd::cluster {

class Publisher {
 public:
  using Done = std::function<void(const Status&, const jetstream::PublishResult&)>;

  // `give_up`: how long a message is retried before done gets UNAVAILABLE.
  Publisher(jetstream::ShardStreams& streams, std::chrono::milliseconds give_up);
  // Fails what is still queued (done with UNAVAILABLE), then returns.
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Queues `data` for `shard` under `message_id`; done is called once, from
  // the publisher's thread: Ok with where it is stored, or the error.
  void Publish(uint32_t shard, std::string data, std::string message_id, Done done) EXCLUDES(mu_);

 private:
  struct Message {
    std::string data;
    std::string id;
    Done done;
    std::chrono::steady_clock::time_point give_up;
  };
  struct Queue {
    util::Mutex mu;
    util::CondVar cv;
    std::deque<Message> messages GUARDED_BY(mu);
    std::thread thread;
  };
  void Run(uint32_t shard);

  jetstream::ShardStreams& streams_;
  const std::chrono::milliseconds give_up_;
  util::Mutex mu_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Queue>> queues_;
};

}  // namespace gradientd::cluster
