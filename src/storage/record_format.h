// Checksummed, numbered records: the unit of journal and snapshot files.
//
// A file starts with an 8-byte magic and a 16-byte random salt, then holds
// records:
//   [u32 length][u32 crc][u64 index][u8 kind][payload: `length` bytes]
// all little-endian, with crc = CRC32C(salt, length, index, kind, payload).
// The salt is the file's own and never leaves it, so bytes a client chose
// (a series name, a producer id) cannot imitate a record of the file they
// end up in: a record whose checksum verifies was written as a record. The
// index numbers the records (journal: the position of the change).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gradientd::storage {

inline constexpr std::size_t kSaltBytes = 16;
inline constexpr std::size_t kRecordHeaderBytes = 17;

uint32_t Crc32c(std::string_view data);

// A new random salt (from the OS's random source).
std::string NewSalt();

// `magic` (8 bytes) followed by `salt`.
std::string FileHeader(std::string_view magic, std::string_view salt);

void AppendRecord(std::string_view salt, uint64_t index, uint8_t kind, std::string_view payload,
                  std::string* out);

struct RecordRead {
  enum class Kind {
    kRecord,      // a whole record with a good checksum
    kEnd,         // no bytes left
    kIncomplete,  // the record runs past the end of the data
    kTooLong,     // its length is over the caller's maximum
    kBadChecksum,
  };
  Kind kind = Kind::kEnd;
  uint64_t index = 0;
  uint8_t type = 0;  // the record's kind byte
  std::string_view payload;
  std::size_t next = 0;  // offset after the record (kRecord)
};

// Reads the record at `offset` of `data`, written with `salt`; a length
// over `max_length` is kTooLong, without reading further.
RecordRead ReadRecord(std::string_view data, std::size_t offset, std::string_view salt,
                      std::size_t max_length);

}  // namespace gradientd::storage
