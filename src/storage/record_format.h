// Checksummed records, the unit of the journal and of snapshot files:
//   [u32 little-endian payload length][u32 little-endian CRC32C of payload][payload]
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gradientd::storage {

inline constexpr std::size_t kRecordHeaderBytes = 8;

uint32_t Crc32c(std::string_view data);

void AppendRecord(std::string_view payload, std::string* out);

struct RecordRead {
  enum class Kind {
    kRecord,      // `payload` is a whole record with a good checksum
    kEnd,         // no bytes left
    kIncomplete,  // the record runs past the end of the data
    kBadChecksum,
  };
  Kind kind = Kind::kEnd;
  std::string_view payload;
  std::size_t next = 0;  // offset after the record (kRecord)
};

// Reads the record at `offset` of `data`.
RecordRead ReadRecord(std::string_view data, std::size_t offset);

}  // namespace gradientd::storage
