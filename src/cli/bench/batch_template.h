// The producers' pre-built ingest frame.
//
// A frame is: varint frame size | Request.id (field 1, varint) | Request.ingest
// (field 2, length-delimited) holding the PointBatch's series and producer_id,
// its sequence (field 5, varint), then x and y (fields 2 and 3, packed). Field
// order does not matter to a protobuf parser, so the ~40-byte head before x
// and y is all that is re-encoded per send; x and y are the same bytes every
// time and go out with the head in one gather write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace gradientd::cli::bench {

struct BatchTemplate {
  uint64_t points = 0;
  std::string xy;  // a serialized PointBatch holding only x and y
  double first_x = 0;
};

// `points` points of gradctl produce --synthetic's default generator.
BatchTemplate MakeBatchTemplate(uint64_t points);

// The serialized PointBatch fields that are the same for every batch of a
// producer.
std::string FixedBatchFields(const std::string& series, const std::string& producer_id);

// The frame's head (all but the xy bytes) into *head: request `id`, batch
// `sequence`, the producer's `fixed` fields, and `xy_bytes` of x and y after.
void EncodeHead(const std::string& fixed, std::size_t xy_bytes, uint64_t id, uint64_t sequence,
                std::string* head);

// Checks that the hand-made frames decode as the Request they stand for.
Status VerifyTemplate(const BatchTemplate& batch);

}  // namespace gradientd::cli::bench
