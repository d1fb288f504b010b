// Publisher: publishes the cluster's changes to their shard streams without
// holding up the thread that proposes them: pipelined (many outstanding
// per shard), each sent again with its message id (stored once) until its
// give-up time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "jetstream/shard_streams.h"

namespace gradientd::cluster {

class Publisher {
 public:
  using Done = std::function<void(const Status&, const jetstream::PublishResult&)>;

  // `give_up`: how long a message is retried before done gets UNAVAILABLE.
  Publisher(jetstream::ShardStreams& streams, std::chrono::milliseconds give_up);
  // Fails what is still outstanding (done with UNAVAILABLE), then returns.
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Sends `data` to `shard` under `message_id`; done is called once, from a
  // publishing thread: Ok with where it is stored, or the error. Waits
  // while the streams have their most messages outstanding. Messages may be
  // stored in another order than published.
  void Publish(uint32_t shard, std::string data, std::string message_id, Done done);

 private:
  jetstream::ShardStreams& streams_;
  const std::chrono::milliseconds give_up_;
};

}  // namespace gradientd::cluster
