#include "cli/bench/batch_template.h"

#include <google/protobuf/io/coded_stream.h>

#include <span>
#include <utility>
#include <vector>

#include "cli/synthetic_points.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_codec.h"

namespace gradientd::cli::bench {
namespace {

using google::protobuf::io::CodedOutputStream;

constexpr char kRequestIdTag = 0x08;      // field 1, varint
constexpr char kRequestIngestTag = 0x12;  // field 2, length-delimited
constexpr char kBatchSequenceTag = 0x28;  // field 5, varint

void AppendVarint(uint64_t v, std::string* out) {
  uint8_t buf[protocol::kMaxHeaderBytes];
  const uint8_t* end = CodedOutputStream::WriteVarint64ToArray(v, buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(end - buf));
}

// Whether `frame` decodes as the ingest request of `id` and `sequence` with
// `batch`'s points, into the series "check" from "check-producer".
bool DecodesAs(const std::string& frame, const BatchTemplate& batch, uint64_t id,
               uint64_t sequence) {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(frame.data()),
                                       frame.size());
  const protocol::FrameHeader h = protocol::DecodeFrameHeader(bytes, frame.size());
  v1::Request request;
  return h.kind == protocol::FrameHeader::Kind::kFrame &&
         h.header_bytes + h.body_bytes == frame.size() &&
         request.ParseFromArray(bytes.data() + h.header_bytes, static_cast<int>(h.body_bytes)) &&
         request.id() == id && request.has_ingest() && request.ingest().series() == "check" &&
         request.ingest().producer_id() == "check-producer" &&
         request.ingest().sequence() == sequence &&
         static_cast<uint64_t>(request.ingest().x_size()) == batch.points &&
         static_cast<uint64_t>(request.ingest().y_size()) == batch.points &&
         request.ingest().x(0) == batch.first_x;
}

}  // namespace

BatchTemplate MakeBatchTemplate(uint64_t points) {
  SyntheticSpec spec;  // gradctl produce --synthetic's defaults
  spec.count = points;
  SyntheticPoints synthetic(spec);
  std::vector<double> x;
  std::vector<double> y;
  synthetic.Next(&x, &y, points);
  v1::PointBatch batch;
  batch.mutable_x()->Add(x.begin(), x.end());
  batch.mutable_y()->Add(y.begin(), y.end());
  BatchTemplate t;
  t.points = points;
  t.first_x = batch.x(0);
  t.xy = batch.SerializeAsString();
  return t;
}

std::string FixedBatchFields(const std::string& series, const std::string& producer_id) {
  v1::PointBatch fixed;
  fixed.set_series(series);
  fixed.set_producer_id(producer_id);
  return fixed.SerializeAsString();
}

void EncodeHead(const std::string& fixed, std::size_t xy_bytes, uint64_t id, uint64_t sequence,
                std::string* head) {
  const std::size_t batch_bytes =
      fixed.size() + 1 + CodedOutputStream::VarintSize64(sequence) + xy_bytes;
  const std::size_t request_bytes = 1 + CodedOutputStream::VarintSize64(id) + 1 +
                                    CodedOutputStream::VarintSize64(batch_bytes) + batch_bytes;
  head->clear();
  AppendVarint(request_bytes, head);
  head->push_back(kRequestIdTag);
  AppendVarint(id, head);
  head->push_back(kRequestIngestTag);
  AppendVarint(batch_bytes, head);
  head->append(fixed);
  head->push_back(kBatchSequenceTag);
  AppendVarint(sequence, head);
}

Status VerifyTemplate(const BatchTemplate& batch) {
  const std::string fixed = FixedBatchFields("check", "check-producer");
  for (const auto& [id, sequence] :
       {std::pair<uint64_t, uint64_t>{1, 1}, {300, 70'000}, {uint64_t{1} << 40, 5}}) {
    std::string frame;
    EncodeHead(fixed, batch.xy.size(), id, sequence, &frame);
    frame += batch.xy;
    if (!DecodesAs(frame, batch, id, sequence)) {
      return Status::Internal("the pre-built ingest frame does not decode (a bug)");
    }
  }
  return Status::Ok();
}

}  // namespace gradientd::cli::bench
