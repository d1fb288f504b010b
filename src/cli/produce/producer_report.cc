#include "cli/produce/producer_report.h"

#include <google/protobuf/struct.pb.h>

#include "cli/output.h"
#include "client/server_list.h"
#include "protocol/error_codes.h"

namespace gradientd::cli {

Status MakeProducerOptions(const std::string& server, std::chrono::nanoseconds failover_timeout,
                           const client::ConnectOptions& connect, std::size_t window,
                           const ExactlyOnceFlags& flags, std::string_view id_prefix,
                           ProducerOptions* options) {
  *options = ProducerOptions{};
  if (Status s = client::ParseServerList(server, &options->servers); !s.ok()) return s;
  options->connect = connect;
  options->window = window;
  options->first_sequence = flags.first_sequence;
  options->retry_for = flags.retry_for;
  if (options->servers.size() > 1 && !flags.retry_for_given) options->retry_for = failover_timeout;
  options->producer_id = flags.producer_id;
  if (options->producer_id.empty()) options->producer_id = GenerateProducerId(id_prefix);
  return Status::Ok();
}

int ReportBadServer(const std::string& server, const Status& status, std::ostream& err) {
  err << "gradctl: --server " << server << ": " << status.message() << '\n';
  return 2;
}

void AnnounceProducerId(const ProducerOptions& options, std::ostream& err) {
  err << "gradctl: producer id " << options.producer_id << " (sequences from "
      << options.first_sequence << ")" << std::endl;
}

std::string AcknowledgedText(const ProducerCounters& c) {
  return Plural(c.points_acked, "point") + " in " + Plural(c.batches_acked, "batch") +
         (c.points_acked == 1 ? " was" : " were") + " sent and acknowledged";
}

int StartProducer(Producer& producer, const std::string& server, std::ostream& err) {
  const Status s = producer.Start();
  if (s.ok()) return 0;
  if (s.code() == StatusCode::kInvalidArgument) return ReportBadServer(server, s, err);
  err << "gradctl: " << s.message() << '\n';
  return 1;
}

void NoteDuplicates(const ProducerCounters& c, const std::string& producer_id, std::ostream& err) {
  if (c.duplicate_batches == 0) return;
  err << "gradctl: note: " << Plural(c.duplicate_batches, "batch") << " ("
      << Plural(c.duplicate_points, "point")
      << ") were acknowledged as duplicates: the server had applied them before (producer id "
      << producer_id << "), so they were not counted again\n";
  if (c.below_window_batches > 0) {
    err << "gradctl: note: " << c.below_window_batches
        << " of them came more than the server's --producer-window below the highest sequence "
           "it applied: it takes those as applied without being able to check\n";
  }
}

void AddCounterFields(const ProducerOptions& options, const ProducerCounters& c,
                      uint64_t last_sequence, google::protobuf::Struct* summary) {
  auto& fields = *summary->mutable_fields();
  fields["producer_id"].set_string_value(options.producer_id);
  fields["first_sequence"] = JsonNumber(options.first_sequence);
  fields["last_sequence"] = JsonNumber(last_sequence);
  fields["points_sent"] = JsonNumber(c.points_acked);
  fields["batches"] = JsonNumber(c.batches_acked);
  fields["duplicate_batches"] = JsonNumber(c.duplicate_batches);
  fields["duplicate_points"] = JsonNumber(c.duplicate_points);
  fields["below_window_batches"] = JsonNumber(c.below_window_batches);
  fields["reconnects"] = JsonNumber(c.reconnects);
  fields["batches_resent"] = JsonNumber(c.batches_resent);
  if (options.servers.size() > 1) fields["failovers"] = JsonNumber(c.failovers);
}

void AddCounterLines(const ProducerOptions& options, const ProducerCounters& c,
                     uint64_t last_sequence, KeyValueBlock* block) {
  block->Add("producer id", options.producer_id);
  block->Add("sequences", c.batches_sent == 0
                              ? std::string("none")
                              : SequenceRange(options.first_sequence, last_sequence));
  block->Add("points sent", std::to_string(c.points_acked));
  block->Add("batches", std::to_string(c.batches_acked));
  block->Add("duplicates", Plural(c.duplicate_batches, "batch") + " (" +
                               Plural(c.duplicate_points, "point") + ") applied before");
  block->Add("reconnects", std::to_string(c.reconnects));
  if (options.servers.size() > 1) {
    block->Add("failovers", std::to_string(c.failovers) + " (to another --server address)");
  }
  if (c.reconnects > 0) block->Add("batches resent", std::to_string(c.batches_resent));
}

int ReportProducerFailure(const Producer& producer, const Status& status, bool json,
                          std::string_view resume, std::ostream& out, std::ostream& err) {
  const std::string acknowledged = AcknowledgedText(producer.counters());
  if (producer.rejection()) {
    const v1::Response& rejection = *producer.rejection();
    if (json) out << ToJson(rejection) << std::endl;
    err << "gradctl: server error " << protocol::ErrorCodeName(rejection.error()) << ": "
        << rejection.error().message() << '\n';
    err << "gradctl: batch " << producer.rejected_sequence() << " was rejected; " << acknowledged
        << '\n';
    return 1;
  }
  err << "gradctl: " << status.message() << '\n';
  err << "gradctl: " << acknowledged << " before that\n";
  if (producer.unacknowledged() > 0) {
    err << "gradctl: " << Plural(producer.unacknowledged(), "batch") << " (sequence "
        << SequenceRange(producer.first_unacknowledged(), producer.next_sequence() - 1)
        << (producer.unacknowledged() == 1 ? ") was" : ") were")
        << " not acknowledged (the server may have applied some of them)\n";
  }
  if (status.code() == StatusCode::kUnavailable) {
    err << "gradctl: to resume, send " << resume << " again with --producer-id "
        << producer.options().producer_id
        << ": the batches the server has applied are acknowledged as duplicates and not "
           "counted twice\n";
  }
  return 1;
}

}  // namespace gradientd::cli
