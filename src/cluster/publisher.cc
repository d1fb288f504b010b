#include "cluster/publisher.h"

#include <utility>

namespace gradientd::cluster {

Publisher::Publisher(jetstream::ShardStreams& streams, std::chrono::milliseconds give_up)
    : streams_(streams), give_up_(give_up) {}

Publisher::~Publisher() {
  streams_.CancelPublishes(
      Status::Unavailable("the node is shutting down: the change may or may not be published"));
}

void Publisher::Publish(uint32_t shard, std::string data, std::string message_id, Done done) {
  streams_.PublishAsync(shard, std::move(data), message_id,
                        std::chrono::steady_clock::now() + give_up_, std::move(done));
}

}  // namespace gradientd::cluster
