#include "storage/record_format.h"

#include <boost/crc.hpp>

namespace gradientd::storage {
namespace {

// CRC-32C (Castagnoli), as in iSCSI, ext4 and leveldb.
using Crc32cComputer = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

void PutU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(std::string_view data, std::size_t offset) {
  uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(data[offset + i])) << (8 * i);
  }
  return v;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  Crc32cComputer crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

void AppendRecord(std::string_view payload, std::string* out) {
  PutU32(static_cast<uint32_t>(payload.size()), out);
  PutU32(Crc32c(payload), out);
  out->append(payload);
}

RecordRead ReadRecord(std::string_view data, std::size_t offset) {
  RecordRead r;
  if (offset >= data.size()) return r;
  if (data.size() - offset < kRecordHeaderBytes) {
    r.kind = RecordRead::Kind::kIncomplete;
    return r;
  }
  const std::size_t length = GetU32(data, offset);
  const uint32_t crc = GetU32(data, offset + 4);
  if (length > data.size() - offset - kRecordHeaderBytes) {
    r.kind = RecordRead::Kind::kIncomplete;
    return r;
  }
  r.payload = data.substr(offset + kRecordHeaderBytes, length);
  if (Crc32c(r.payload) != crc) {
    r.kind = RecordRead::Kind::kBadChecksum;
    return r;
  }
  r.kind = RecordRead::Kind::kRecord;
  r.next = offset + kRecordHeaderBytes + length;
  return r;
}

}  // namespace gradientd::storage
