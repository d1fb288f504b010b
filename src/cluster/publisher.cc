#include "cluster/publisher.h"

#include <memory>
#include <utility>

namespace gradientd::cluster {

Publisher::Publisher(jetstream::ShardStreams& streams, std::chrono::milliseconds give_up)
    : streams_(streams), give_up_(give_up) {
  for (uint32_t shard = 0; shard < streams.shards(); ++shard) {
    queues_.push_back(std::make_unique<Queue>());
  }
  for (uint32_t shard = 0; shard < streams.shards(); ++shard) {
    queues_[shard]->thread = std::thread([this, shard] { Run(shard); });
  }
}

Publisher::~Publisher() {
  {
    util::MutexLock lock(mu_);
    stopping_ = true;
  }
  for (auto& queue : queues_) {
    {
      util::MutexLock lock(queue->mu);
      queue->cv.SignalAll();
    }
    queue->thread.join();
  }
}

void Publisher::Publish(uint32_t shard, std::string data, std::string message_id, Done done) {
  Queue& queue = *queues_.at(shard);
  util::MutexLock lock(queue.mu);
  queue.messages.push_back({std::move(data), std::move(message_id), std::move(done),
                            std::chrono::steady_clock::now() + give_up_});
  queue.cv.Signal();
}

void Publisher::Run(uint32_t shard) {
  Queue& queue = *queues_[shard];
  while (true) {
    Message message;
    bool stopping = false;
    {
      util::MutexLock lock(mu_);
      stopping = stopping_;
    }
    {
      util::MutexLock lock(queue.mu);
      while (queue.messages.empty() && !stopping) {
        queue.cv.WaitFor(queue.mu, std::chrono::milliseconds(100));
        util::MutexLock stop(mu_);
        stopping = stopping_;
      }
      if (queue.messages.empty()) return;
      message = std::move(queue.messages.front());
      queue.messages.pop_front();
    }
    if (stopping) {
      message.done(Status::Unavailable("the node is shutting down: the change was not published"),
                   {});
      continue;
    }
    jetstream::PublishResult result;
    Status status;
    // Retried with its id: a message stored by an attempt whose answer was
    // lost is stored once.
    do {
      status = streams_.Publish(shard, message.data, message.id, &result);
    } while (!status.ok() && status.code() == StatusCode::kUnavailable &&
             std::chrono::steady_clock::now() < message.give_up);
    message.done(status, result);
  }
}

}  // namespace gradientd::cluster
