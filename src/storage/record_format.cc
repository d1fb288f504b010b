#include "storage/record_format.h"

#include <boost/crc.hpp>

#include "util/random.h"

namespace gradientd::storage {
namespace {

// CRC-32C (Castagnoli), as in iSCSI, ext4 and leveldb.
using Crc32cComputer = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

void PutLittleEndian(uint64_t v, std::size_t bytes, std::string* out) {
  for (std::size_t i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(std::string_view data, std::size_t offset, std::size_t bytes) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(data[offset + i])) << (8 * i);
  }
  return v;
}

// The checksum of a record: the salt, the header without the crc, the payload.
uint32_t RecordCrc(std::string_view salt, std::string_view header_fields,
                   std::string_view payload) {
  Crc32cComputer crc;
  crc.process_bytes(salt.data(), salt.size());
  crc.process_bytes(header_fields.data(), header_fields.size());
  crc.process_bytes(payload.data(), payload.size());
  return crc.checksum();
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  Crc32cComputer crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

std::string NewSalt() { return util::RandomBytes(kSaltBytes); }

std::string FileHeader(std::string_view magic, std::string_view salt) {
  std::string header(magic);
  header.append(salt);
  return header;
}

void AppendRecord(std::string_view salt, uint64_t index, uint8_t kind, std::string_view payload,
                  std::string* out) {
  std::string fields;  // length, index, kind: what the crc covers besides the payload
  PutLittleEndian(payload.size(), 4, &fields);
  PutLittleEndian(index, 8, &fields);
  fields.push_back(static_cast<char>(kind));
  const uint32_t crc = RecordCrc(salt, fields, payload);
  out->append(fields, 0, 4);
  PutLittleEndian(crc, 4, out);
  out->append(fields, 4, std::string::npos);
  out->append(payload);
}

RecordRead ReadRecord(std::string_view data, std::size_t offset, std::string_view salt,
                      std::size_t max_length) {
  RecordRead r;
  if (offset >= data.size()) return r;
  if (data.size() - offset < kRecordHeaderBytes) {
    r.kind = RecordRead::Kind::kIncomplete;
    return r;
  }
  const std::size_t length = GetLittleEndian(data, offset, 4);
  if (length > max_length) {
    r.kind = RecordRead::Kind::kTooLong;
    return r;
  }
  if (length > data.size() - offset - kRecordHeaderBytes) {
    r.kind = RecordRead::Kind::kIncomplete;
    return r;
  }
  const auto crc = static_cast<uint32_t>(GetLittleEndian(data, offset + 4, 4));
  std::string fields(data.substr(offset, 4));
  fields.append(data.substr(offset + 8, kRecordHeaderBytes - 8));
  r.payload = data.substr(offset + kRecordHeaderBytes, length);
  if (RecordCrc(salt, fields, r.payload) != crc) {
    r.kind = RecordRead::Kind::kBadChecksum;
    return r;
  }
  r.kind = RecordRead::Kind::kRecord;
  r.index = GetLittleEndian(data, offset + 8, 8);
  r.type = static_cast<uint8_t>(data[offset + 16]);
  r.next = offset + kRecordHeaderBytes + length;
  return r;
}

}  // namespace gradientd::storage
