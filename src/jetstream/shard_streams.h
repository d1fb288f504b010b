// ShardStreams: a cluster's log on NATS JetStream, as P replicated streams
// ("shards") of opaque messages. It knows streams, message ids and stream
// sequences; nothing of series or records.
//
// Shard i of cluster NAME is the stream GRADIENTD_NAME_i on the subject
// gradientd.NAME.i, described "gradientd cluster NAME: shard i of P". The
// shard count and the replicas are fixed when the first node creates the
// streams; later nodes find them and must agree.
// A message published with an id already seen within the stream's
// duplicate window is not stored again (PublishResult.duplicate).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "util/mutex.h"

struct __natsConnection;
struct __jsCtx;
struct __natsSubscription;
struct __natsMsg;
struct jsPubAck;
struct jsPubAckErr;

namespace gradientd::jetstream {

// How a node proves itself to NATS and checks NATS's servers. Empty fields
// are unused; the credentials are secrets, never put into a message.
struct NatsSecurity {
  // TLS (also implied by tls:// urls): the servers' certificates must chain
  // to a CA in this PEM file; with cert_file and key_file (both or
  // neither), a client certificate for servers that verify one.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // At most one of user (with password) and token.
  std::string user;
  std::string password;
  std::string token;
};

struct ClusterOptions {
  std::vector<std::string> urls;  // nats://HOST:PORT, one or more servers of the NATS cluster
  NatsSecurity security;
  std::string name = "gradientd";  // [A-Za-z0-9_-], 1 to 32 bytes
  uint32_t shards = 4;
  unsigned replicas = 3;  // 1 to 5
  // How long a connect, a stream request or a publish waits for its answer.
  std::chrono::milliseconds timeout{5000};
  // How long JetStream remembers a message id to drop its repeats.
  std::chrono::nanoseconds duplicate_window = std::chrono::minutes(2);
  // Asynchronous publishes outstanding at once; PublishAsync waits beyond.
  std::size_t max_outstanding = 1024;
};

// Whether `name` can name a cluster (streams and subjects carry it).
Status ValidateClusterName(const std::string& name);

// The shard of a key (a series name): FNV-1a, the same on every node.
uint32_t ShardOf(std::string_view key, uint32_t shards);

struct PublishResult {
  uint64_t sequence = 0;   // the message's position in its shard's stream
  bool duplicate = false;  // its id was seen before: stored once, at `sequence`
};

struct StreamMessage {
  uint64_t sequence = 0;
  std::string data;
};

struct ShardState {
  uint64_t first_sequence = 0;  // the oldest message kept (after purges)
  uint64_t last_sequence = 0;   // 0: nothing ever published
  uint64_t messages = 0;
  uint64_t bytes = 0;
  std::string leader;  // the NATS server that leads the stream's replicas
};

class ShardStreams {
 public:
  // Connects to the NATS cluster (any of the urls) and creates the shard
  // streams, or checks that existing ones have the options' shard count
  // and replicas. Fails with the servers' answer, e.g. UNAVAILABLE when no
  // server answers within the timeout.
  static Status Open(const ClusterOptions& options, std::unique_ptr<ShardStreams>* out);
  // Fails the outstanding PublishAsyncs (UNAVAILABLE), then closes.
  ~ShardStreams();
  ShardStreams(const ShardStreams&) = delete;
  ShardStreams& operator=(const ShardStreams&) = delete;

  const ClusterOptions& options() const { return options_; }
  uint32_t shards() const { return options_.shards; }

  // Stores `data` in `shard` under `message_id` (1 to 256 bytes) once a
  // quorum of its replicas has it. Thread-safe. Fails (UNAVAILABLE) when
  // no answer came within the timeout: the message may or may not be
  // stored, and publishing it again with the same id stores it once.
  Status Publish(uint32_t shard, std::string_view data, const std::string& message_id,
                 PublishResult* result);

  // Called once per PublishAsync, from a libnats or ShardStreams thread.
  using PublishCallback = std::function<void(const Status&, const PublishResult&)>;

  // Pipelined Publish: sends and returns; `callback` gets Ok with where the
  // message is stored, or an error. A message unanswered for the timeout,
  // or refused while its stream has no leader, is sent again with its id
  // (stored once) until `give_up`, then fails UNAVAILABLE. Waits while
  // max_outstanding publishes are outstanding. Thread-safe. An id already
  // outstanding is refused (FailedPrecondition).
  void PublishAsync(uint32_t shard, std::string data, const std::string& message_id,
                    std::chrono::steady_clock::time_point give_up, PublishCallback callback)
      EXCLUDES(async_mu_);
  // Fails every outstanding PublishAsync with `status` (it may or may not be
  // stored) and returns once no callback runs. Later PublishAsyncs work.
  // REQUIRES: not called from a PublishCallback (it would wait for itself).
  void CancelPublishes(const Status& status) EXCLUDES(async_mu_);

  Status State(uint32_t shard, ShardState* state);
  // Whether the connection to NATS is up now (it reconnects by itself).
  bool Connected() const;

  // Reads a shard in stream order from `from_sequence` on (an ordered
  // consumer: no gap, no repeat; recreated by the client after a failure).
  // UNAVAILABLE while the stream has no leader (for seconds after its
  // leader died): try again.
  class Reader {
   public:
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    // The next message, waiting up to `wait`: Ok with it, Ok with sequence
    // 0 when none came (try again), or the error that ended the reader.
    Status Next(std::chrono::milliseconds wait, StreamMessage* message);

   private:
    friend class ShardStreams;
    explicit Reader(__natsSubscription* subscription) : subscription_(subscription) {}
    __natsSubscription* subscription_;
  };
  Status OpenReader(uint32_t shard, uint64_t from_sequence, std::unique_ptr<Reader>* reader);

  std::string StreamName(uint32_t shard) const;
  std::string Subject(uint32_t shard) const;

 private:
  explicit ShardStreams(ClusterOptions options) : options_(std::move(options)) {}
  Status Connect();
  // The options' servers, as one comma-separated list (for messages).
  std::string Servers() const;
  // Whether the connection is TLS (a CA, a client certificate or a tls:// url).
  bool Secure() const;
  // Fails when the cluster exists with another shard count.
  Status CheckShardCount();
  // Creates the shard's stream, or checks the existing one's replicas.
  Status EnsureStream(uint32_t shard);
  // Each stream's description: its cluster, shard and shard count.
  std::string Description(uint32_t shard) const;

  using Clock = std::chrono::steady_clock;
  struct Outstanding {
    uint32_t shard = 0;
    std::string data;
    PublishCallback callback;
    Clock::time_point give_up;
    Clock::time_point resend_at;           // when it is sent (again)
    bool awaiting = false;                 // sent, and no answer came yet
    std::chrono::milliseconds backoff{0};  // the wait after its last refusal
  };
  // The sender thread: sends what is due, fails what is past its give-up.
  void SendLoop() EXCLUDES(async_mu_);
  // A message went unanswered for the timeout: takes back libnats' pending
  // list and adds every message awaiting an answer to `due`.
  void ForgetUnanswered(std::vector<std::string>* due) EXCLUDES(async_mu_);
  // Sends the messages of the ids in `due` that are still outstanding.
  void SendDue(std::vector<std::string>* due) EXCLUDES(async_mu_);
  // Takes the entry of `id` out and runs its callback (once; none if gone).
  void Complete(const std::string& id, const Status& status, const PublishResult& result)
      EXCLUDES(async_mu_);
  void RunCallback(PublishCallback& callback, const Status& status, const PublishResult& result)
      EXCLUDES(async_mu_);
  static void OnAck(__jsCtx* js, __natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure);

  ClusterOptions options_;
  __natsConnection* connection_ = nullptr;
  __jsCtx* js_ = nullptr;
  __jsCtx* async_js_ = nullptr;  // its PublishAsync options call OnAck

  util::Mutex async_mu_;
  util::CondVar async_cv_;  // an entry added, removed or due; callbacks done
  std::map<std::string, Outstanding> outstanding_ GUARDED_BY(async_mu_);  // by message id
  std::vector<std::string> fresh_ GUARDED_BY(async_mu_);                  // ids not sent yet
  int callbacks_running_ GUARDED_BY(async_mu_) = 0;
  bool closing_ GUARDED_BY(async_mu_) = false;
  std::thread sender_;
};

}  // namespace gradientd::jetstream
