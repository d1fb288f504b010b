#include "jetstream/shard_streams.h"

#include <nats/nats.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

namespace gradientd::jetstream {
namespace {

constexpr std::size_t kMaxClusterNameBytes = 32;
constexpr std::size_t kMaxMessageIdBytes = 256;

// "what: the NATS status text (detail; JetStream error N)".
Status NatsError(const std::string& what, natsStatus status, jsErrCode code = jsErrCode{}) {
  std::string text = what + ": " + natsStatus_GetText(status);
  natsStatus last = NATS_OK;
  if (const char* detail = nats_GetLastError(&last); detail != nullptr && *detail != '\0') {
    text += std::string(" (") + detail + ")";
  }
  if (code != 0) text += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
  switch (status) {
    case NATS_TIMEOUT:
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_STALE_CONNECTION:
    case NATS_NOT_YET_CONNECTED:
      return Status::Unavailable(text);
    case NATS_INVALID_ARG:
      return Status::InvalidArgument(text);
    case NATS_CONNECTION_AUTH_FAILED:
      return Status::Unauthenticated(text);
    case NATS_NOT_PERMITTED:
      return Status::PermissionDenied(text);
    case NATS_SSL_ERROR:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED:
      return Status::FailedPrecondition(text);
    default:
      return Status::Internal(text);
  }
}

// TLS and credentials into `options`; the error names the file that failed
// (never a secret).
Status ApplySecurity(const NatsSecurity& security, natsOptions* options) {
  natsStatus s = NATS_OK;
  if (!security.ca_file.empty()) {
    if (s = natsOptions_SetSecure(options, true); s != NATS_OK) return NatsError("NATS TLS", s);
    if (s = natsOptions_LoadCATrustedCertificates(options, security.ca_file.c_str());
        s != NATS_OK) {
      return NatsError("cannot load the CA certificates for NATS from " + security.ca_file, s);
    }
  }
  if (!security.cert_file.empty() || !security.key_file.empty()) {
    if (s = natsOptions_SetSecure(options, true); s != NATS_OK) return NatsError("NATS TLS", s);
    s = natsOptions_LoadCertificatesChain(options, security.cert_file.c_str(),
                                          security.key_file.c_str());
    if (s != NATS_OK) {
      return NatsError("cannot load the client certificate for NATS from " + security.cert_file +
                           " and " + security.key_file,
                       s);
    }
  }
  if (!security.user.empty()) {
    s = natsOptions_SetUserInfo(options, security.user.c_str(), security.password.c_str());
  } else if (!security.token.empty()) {
    s = natsOptions_SetToken(options, security.token.c_str());
  }
  return s == NATS_OK ? Status::Ok() : NatsError("NATS credentials", s);
}

struct OptionsDeleter {
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};
struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
struct PubAckDeleter {
  void operator()(jsPubAck* a) const { jsPubAck_Destroy(a); }
};
struct StreamInfoDeleter {
  void operator()(jsStreamInfo* i) const { jsStreamInfo_Destroy(i); }
};
struct MetaDataDeleter {
  void operator()(jsMsgMetaData* m) const { jsMsgMetaData_Destroy(m); }
};

}  // namespace

Status ValidateClusterName(const std::string& name) {
  if (name.empty() || name.size() > kMaxClusterNameBytes) {
    return Status::InvalidArgument("the cluster name must be 1 to 32 bytes, got " +
                                   std::to_string(name.size()));
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument(
          "the cluster name may hold only letters, digits, '_' and '-' (it names NATS streams "
          "and subjects), got '" +
          name + "'");
    }
  }
  return Status::Ok();
}

uint32_t ShardOf(std::string_view key, uint32_t shards) {
  uint64_t hash = 14695981039346656037ull;
  for (const char c : key) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return static_cast<uint32_t>(hash % shards);
}

bool ShardStreams::Connected() const {
  return connection_ != nullptr && natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
}

bool ShardStreams::Secure() const {
  const NatsSecurity& security = options_.security;
  if (!security.ca_file.empty() || !security.cert_file.empty()) return true;
  return std::any_of(options_.urls.begin(), options_.urls.end(),
                     [](const std::string& url) { return url.rfind("tls://", 0) == 0; });
}

std::string ShardStreams::Servers() const {
  std::string servers;
  for (const std::string& url : options_.urls) servers += (servers.empty() ? "" : ",") + url;
  return servers;
}

std::string ShardStreams::StreamName(uint32_t shard) const {
  return "GRADIENTD_" + options_.name + "_" + std::to_string(shard);
}

std::string ShardStreams::Subject(uint32_t shard) const {
  return "gradientd." + options_.name + "." + std::to_string(shard);
}

Status ShardStreams::Open(const ClusterOptions& options, std::unique_ptr<ShardStreams>* out) {
  if (Status s = ValidateClusterName(options.name); !s.ok()) return s;
  if (options.urls.empty()) return Status::InvalidArgument("no NATS server address given");
  const NatsSecurity& security = options.security;
  if (security.cert_file.empty() != security.key_file.empty()) {
    return Status::InvalidArgument("a NATS client certificate needs both its cert and key file");
  }
  if (!security.user.empty() && !security.token.empty()) {
    return Status::InvalidArgument("NATS credentials are a user and password or a token, not both");
  }
  if (options.shards < 1 || options.shards > 1024) {
    return Status::InvalidArgument("the shard count must be between 1 and 1024, got " +
                                   std::to_string(options.shards));
  }
  if (options.replicas < 1 || options.replicas > 5) {
    return Status::InvalidArgument("the replicas must be between 1 and 5, got " +
                                   std::to_string(options.replicas));
  }
  std::unique_ptr<ShardStreams> streams(new ShardStreams(options));
  if (Status s = streams->Connect(); !s.ok()) return s;
  if (Status s = streams->CheckShardCount(); !s.ok()) return s;
  for (uint32_t shard = 0; shard < options.shards; ++shard) {
    if (Status s = streams->EnsureStream(shard); !s.ok()) return s;
  }
  *out = std::move(streams);
  return Status::Ok();
}

ShardStreams::~ShardStreams() {
  {
    util::MutexLock lock(async_mu_);
    closing_ = true;
    async_cv_.SignalAll();
  }
  if (sender_.joinable()) sender_.join();
  if (connection_ != nullptr) natsConnection_Close(connection_);
  CancelPublishes(Status::Unavailable(
      "the cluster connection is closing: the message may or may not be stored"));
  if (async_js_ != nullptr) jsCtx_Destroy(async_js_);
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (connection_ != nullptr) natsConnection_Destroy(connection_);
}

Status ShardStreams::Connect() {
  natsOptions* raw = nullptr;
  if (natsStatus s = natsOptions_Create(&raw); s != NATS_OK) return NatsError("NATS options", s);
  std::unique_ptr<natsOptions, OptionsDeleter> nats_options(raw);
  std::vector<const char*> urls;
  for (const std::string& url : options_.urls) urls.push_back(url.c_str());
  const int64_t timeout_ms = options_.timeout.count();
  natsStatus s = natsOptions_SetServers(raw, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetTimeout(raw, timeout_ms);
  // Reconnect for ever (to any server of the cluster): a write meanwhile
  // fails after its timeout, and works again once a server is back.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(raw, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(raw, 100);
  if (s != NATS_OK) return NatsError("NATS options", s);
  if (Status secured = ApplySecurity(options_.security, raw); !secured.ok()) return secured;
  if (s = natsConnection_Connect(&connection_, raw); s != NATS_OK) {
    connection_ = nullptr;
    const Status error = NatsError("cannot connect to NATS at " + Servers(), s);
    if (!Secure() || (s != NATS_PROTOCOL_ERROR && s != NATS_IO_ERROR)) return error;
    // What a server that verifies clients does to a certificate it refuses.
    return Status(error.code(), error.message() +
                                    ": the servers closed the TLS connection; if they verify "
                                    "client certificates, this node's is missing or not trusted");
  }
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = timeout_ms;
  if (s = natsConnection_JetStream(&js_, connection_, &js_options); s != NATS_OK) {
    js_ = nullptr;
    return NatsError("JetStream", s);
  }
  // The library's own bound, above ours: acks it waits for in vain (a
  // killed leader's) count against it until its MaxWait times them out.
  js_options.PublishAsync.MaxPending = static_cast<int64_t>(options_.max_outstanding) * 4;
  js_options.PublishAsync.StallWait = timeout_ms;
  js_options.PublishAsync.AckHandler = &ShardStreams::OnAck;
  js_options.PublishAsync.AckHandlerClosure = this;
  if (s = natsConnection_JetStream(&async_js_, connection_, &js_options); s != NATS_OK) {
    async_js_ = nullptr;
    return NatsError("JetStream", s);
  }
  sender_ = std::thread([this] { SendLoop(); });
  return Status::Ok();
}

std::string ShardStreams::Description(uint32_t shard) const {
  return "gradientd cluster " + options_.name + ": shard " + std::to_string(shard) + " of " +
         std::to_string(options_.shards);
}

Status ShardStreams::CheckShardCount() {
  // Shard 0 says how many shards its cluster was created with.
  const std::string name = StreamName(0);
  jsStreamInfo* raw = nullptr;
  jsErrCode code = jsErrCode{};
  const natsStatus s = js_GetStreamInfo(&raw, js_, name.c_str(), nullptr, &code);
  if (s != NATS_OK && code == JSStreamNotFoundErr) return Status::Ok();  // a new cluster
  if (s != NATS_OK) return NatsError("cannot look up stream " + name, s, code);
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw);
  const std::string description =
      info->Config->Description != nullptr ? info->Config->Description : "";
  if (description != Description(0)) {
    return Status::FailedPrecondition(
        "stream " + name + " says '" + description + "', not '" + Description(0) +
        "': every node of a cluster must be given the same shard count");
  }
  return Status::Ok();
}

Status ShardStreams::EnsureStream(uint32_t shard) {
  const std::string name = StreamName(shard);
  const std::string subject = Subject(shard);
  const std::string description = Description(shard);
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = name.c_str();
  config.Description = description.c_str();
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.Replicas = options_.replicas;
  config.Duplicates = options_.duplicate_window.count();
  jsStreamInfo* raw = nullptr;
  jsErrCode code = jsErrCode{};
  natsStatus s = js_AddStream(&raw, js_, &config, nullptr, &code);
  if (s != NATS_OK && code == JSStreamNameExistErr) {  // exists, with other settings
    code = jsErrCode{};
    s = js_GetStreamInfo(&raw, js_, name.c_str(), nullptr, &code);
  }
  if (s != NATS_OK) return NatsError("cannot create or find stream " + name, s, code);
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw);
  if (info->Config->Replicas != static_cast<int64_t>(options_.replicas)) {
    return Status::FailedPrecondition(
        "stream " + name + " has " + std::to_string(info->Config->Replicas) +
        " replicas, not the " + std::to_string(options_.replicas) +
        " asked for: every node of a cluster must be given the same replicas");
  }
  return Status::Ok();
}

Status ShardStreams::Publish(uint32_t shard, std::string_view data, const std::string& message_id,
                             PublishResult* result) {
  if (shard >= options_.shards) {
    return Status::InvalidArgument("no shard " + std::to_string(shard));
  }
  if (message_id.empty() || message_id.size() > kMaxMessageIdBytes) {
    return Status::InvalidArgument("a message id must be 1 to 256 bytes");
  }
  const std::string subject = Subject(shard);
  jsPubOptions pub;
  jsPubOptions_Init(&pub);
  pub.MsgId = message_id.c_str();
  pub.MaxWait = options_.timeout.count();
  jsPubAck* raw = nullptr;
  jsErrCode code = jsErrCode{};
  const natsStatus s = js_Publish(&raw, js_, subject.c_str(), data.data(),
                                  static_cast<int>(data.size()), &pub, &code);
  if (s != NATS_OK) {
    return NatsError("publishing to " + StreamName(shard) + " (it may or may not be stored)", s,
                     code);
  }
  std::unique_ptr<jsPubAck, PubAckDeleter> ack(raw);
  result->sequence = ack->Sequence;
  result->duplicate = ack->Duplicate;
  return Status::Ok();
}

Status ShardStreams::State(uint32_t shard, ShardState* state) {
  const std::string name = StreamName(shard);
  jsStreamInfo* raw = nullptr;
  jsErrCode code = jsErrCode{};
  if (natsStatus s = js_GetStreamInfo(&raw, js_, name.c_str(), nullptr, &code); s != NATS_OK) {
    return NatsError("stream " + name, s, code);
  }
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw);
  state->first_sequence = info->State.FirstSeq;
  state->last_sequence = info->State.LastSeq;
  state->messages = info->State.Msgs;
  state->bytes = info->State.Bytes;
  state->leader =
      info->Cluster != nullptr && info->Cluster->Leader != nullptr ? info->Cluster->Leader : "";
  return Status::Ok();
}

Status ShardStreams::OpenReader(uint32_t shard, uint64_t from_sequence,
                                std::unique_ptr<Reader>* reader) {
  const std::string subject = Subject(shard);
  const std::string stream = StreamName(shard);
  jsSubOptions sub_options;
  jsSubOptions_Init(&sub_options);
  sub_options.Stream = stream.c_str();
  sub_options.Ordered = true;
  sub_options.Config.DeliverPolicy = js_DeliverByStartSequence;
  sub_options.Config.OptStartSeq = std::max<uint64_t>(from_sequence, 1);
  natsSubscription* subscription = nullptr;
  jsErrCode code = jsErrCode{};
  if (natsStatus s =
          js_SubscribeSync(&subscription, js_, subject.c_str(), nullptr, &sub_options, &code);
      s != NATS_OK) {
    return NatsError("reading " + stream, s, code);
  }
  reader->reset(new Reader(subscription));
  return Status::Ok();
}

ShardStreams::Reader::~Reader() {
  natsSubscription_Unsubscribe(subscription_);
  natsSubscription_Destroy(subscription_);
}

Status ShardStreams::Reader::Next(std::chrono::milliseconds wait, StreamMessage* message) {
  natsMsg* raw = nullptr;
  const natsStatus s = natsSubscription_NextMsg(&raw, subscription_, wait.count());
  message->sequence = 0;
  if (s == NATS_TIMEOUT) return Status::Ok();
  if (s != NATS_OK) return NatsError("reading a shard", s);
  std::unique_ptr<natsMsg, MsgDeleter> msg(raw);
  jsMsgMetaData* meta_raw = nullptr;
  if (natsStatus m = natsMsg_GetMetaData(&meta_raw, raw); m != NATS_OK) {
    return NatsError("a shard message's metadata", m);
  }
  std::unique_ptr<jsMsgMetaData, MetaDataDeleter> meta(meta_raw);
  message->sequence = meta->Sequence.Stream;
  message->data.assign(natsMsg_GetData(raw), static_cast<std::size_t>(natsMsg_GetDataLength(raw)));
  return Status::Ok();
}

}  // namespace gradientd::jetstream
