#include "cli/bench/series_setup.h"

#include <array>
#include <boost/asio/buffer.hpp>
#include <cstdio>
#include <span>

#include "cli/bench/common.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_codec.h"

namespace gradientd::cli::bench {
namespace {

namespace asio = boost::asio;

// Requests per write, and the most in flight.
constexpr uint64_t kSeriesChunk = 256;
constexpr uint64_t kSeriesWindow = 4096;

// Appends the ingest requests of series first, first + 1, ... (at most
// kSeriesChunk, none at or past `count`) to *chunk; returns the next series.
uint64_t AppendSeriesChunk(const std::string& prefix, uint64_t first, uint64_t count,
                           v1::Request* request, std::string* chunk) {
  v1::PointBatch* batch = request->mutable_ingest();
  char name[64];
  uint64_t next = first;
  for (; next - first < kSeriesChunk && next < count; ++next) {
    std::snprintf(name, sizeof name, "-%09llu", static_cast<unsigned long long>(next));
    batch->set_series(prefix + name);
    batch->set_x(0, static_cast<double>(next));
    batch->set_y(0, 1.0);
    request->set_id(next + 1);
    protocol::AppendFrame(*request, chunk);
  }
  return next;
}

}  // namespace

Status CreateSeries(const protocol::Endpoint& endpoint, const client::ConnectOptions& options,
                    const std::string& prefix, uint64_t count, double* seconds) {
  RawConnection connection;
  if (Status s = connection.Connect(endpoint, options); !s.ok()) return s;
  const Clock::time_point start = Clock::now();
  v1::Request request;
  request.mutable_ingest()->add_x(0);
  request.mutable_ingest()->add_y(0);
  v1::Response response;
  std::string chunk;
  uint64_t sent = 0, received = 0;
  while (received < count) {
    if (sent < count && sent - received + kSeriesChunk <= kSeriesWindow) {
      chunk.clear();
      sent = AppendSeriesChunk(prefix, sent, count, &request, &chunk);
      if (Status s = connection.Write(asio::buffer(chunk)); !s.ok()) return s;
      continue;
    }
    std::span<const uint8_t> body;
    if (Status s = connection.WaitFrame(&body); !s.ok()) return s;
    if (Status s = CheckResponse(body, v1::Response::kAck, &response); !s.ok()) return s;
    ++received;
  }
  *seconds = Seconds(Clock::now() - start);
  connection.Close();
  return Status::Ok();
}

Status EnsureSeries(RawConnection* connection, const std::string& series,
                    const BatchTemplate& batch, const std::string& producer_id) {
  v1::Request request;
  request.set_id(1);
  request.mutable_gradient()->set_series(series);
  std::string frame;
  protocol::AppendFrame(request, &frame);
  std::span<const uint8_t> body;
  if (Status s = connection->Write(asio::buffer(frame)); !s.ok()) return s;
  if (Status s = connection->WaitFrame(&body); !s.ok()) return s;
  v1::Response response;
  if (!response.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Status::Internal("cannot decode a response");
  }
  if (response.has_gradient()) return Status::Ok();
  if (!response.has_error() || (response.error().code() != v1::Error::NOT_FOUND &&
                                response.error().code() != v1::Error::FAILED_PRECONDITION)) {
    return CheckResponse(body, v1::Response::kGradient, &response);
  }
  std::string head;
  EncodeHead(FixedBatchFields(series, producer_id), batch.xy.size(), 2, 1, &head);
  const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(batch.xy)};
  if (Status s = connection->Write(buffers); !s.ok()) return s;
  if (Status s = connection->WaitFrame(&body); !s.ok()) return s;
  return CheckResponse(body, v1::Response::kAck, &response);
}

}  // namespace gradientd::cli::bench
