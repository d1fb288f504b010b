#include "protocol/unknown_fields.h"

#include <google/protobuf/wire_format.h>
#include <google/protobuf/wire_format_lite.h>

namespace gradientd::protocol {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormat;
using google::protobuf::internal::WireFormatLite;

// protobuf's default recursion limit: nested messages and groups.
constexpr int kMaxDepth = 100;

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A cursor over the bytes, reading exactly what protobuf 3.21's parser
// accepts (parse_context.h): so a frame is malformed here iff protobuf
// would refuse it.
struct Reader {
  const uint8_t* p;
  const uint8_t* end;

  // A varint of at most `max_bytes`, its value modulo 2^64.
  bool Varint(int max_bytes, uint64_t* value) {
    uint64_t v = 0;
    for (int i = 0; i < max_bytes && p < end; ++i) {
      const uint8_t byte = *p++;
      if (i < 10) v |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if (byte < 0x80) {
        *value = v;
        return true;
      }
    }
    return false;
  }
  // Tags: at most 5 bytes, truncated to 32 bits (ReadTag).
  bool Tag(uint32_t* tag) {
    uint64_t v = 0;
    if (!Varint(5, &v)) return false;
    *tag = static_cast<uint32_t>(v);
    return true;
  }
  // Sizes: at most 5 bytes, under 2 GiB (ReadSize), and present.
  bool Size(std::size_t* size) {
    const uint8_t* start = p;
    uint64_t v = 0;
    if (!Varint(5, &v)) return false;
    if (p - start == 5 && start[4] >= 8) return false;
    if (v > static_cast<uint64_t>(end - p)) return false;
    *size = static_cast<std::size_t>(v);
    return true;
  }
  bool Skip(std::size_t n) {
    if (n > static_cast<std::size_t>(end - p)) return false;
    p += n;
    return true;
  }
};

bool Known(const FieldDescriptor* field, WireFormatLite::WireType wire) {
  if (field == nullptr) return false;
  if (wire == WireFormat::WireTypeForFieldType(field->type())) return true;
  return field->is_packable() && wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
}

// Skips the value of a field with this tag (an unknown field: any wire
// type; groups to their matching end, as protobuf's UnknownFieldParse).
bool SkipValue(uint32_t tag, Reader* in, int depth) {
  if (WireFormatLite::GetTagFieldNumber(tag) == 0) return false;
  uint64_t ignored = 0;
  std::size_t size = 0;
  switch (WireFormatLite::GetTagWireType(tag)) {
    case WireFormatLite::WIRETYPE_VARINT:
      return in->Varint(10, &ignored);
    case WireFormatLite::WIRETYPE_FIXED64:
      return in->Skip(8);
    case WireFormatLite::WIRETYPE_FIXED32:
      return in->Skip(4);
    case WireFormatLite::WIRETYPE_LENGTH_DELIMITED:
      return in->Size(&size) && in->Skip(size);
    case WireFormatLite::WIRETYPE_START_GROUP: {
      if (depth + 1 > kMaxDepth) return false;
      while (true) {
        uint32_t inner = 0;
        if (!in->Tag(&inner)) return false;
        if (inner == 0 ||
            WireFormatLite::GetTagWireType(inner) == WireFormatLite::WIRETYPE_END_GROUP) {
          return inner == (tag & ~7u) + WireFormatLite::WIRETYPE_END_GROUP;
        }
        if (!SkipValue(inner, in, depth + 1)) return false;
      }
    }
    default:
      return false;  // an end-group tag out of place, or wire type 6 or 7
  }
}

// Scans a message of `type` to the end of `in`; `depth` messages enclose it.
bool Scan(const Descriptor* type, Reader* in, int depth, std::string* out, bool* found) {
  while (in->p < in->end) {
    const uint8_t* start = in->p;
    uint32_t tag = 0;
    if (!in->Tag(&tag) || tag == 0) return false;
    const auto wire = WireFormatLite::GetTagWireType(tag);
    const FieldDescriptor* field =
        type->FindFieldByNumber(static_cast<int>(WireFormatLite::GetTagFieldNumber(tag)));
    if (Known(field, wire) && field->type() == FieldDescriptor::TYPE_MESSAGE) {
      std::size_t size = 0;
      if (!in->Size(&size) || depth + 1 > kMaxDepth) return false;
      Reader inner{in->p, in->p + size};
      std::string stripped;
      if (!Scan(field->message_type(), &inner, depth + 1, out ? &stripped : nullptr, found)) {
        return false;
      }
      in->p = inner.end;
      if (out) {
        AppendVarint(tag, out);
        AppendVarint(stripped.size(), out);
        out->append(stripped);
      }
      continue;
    }
    if (!SkipValue(tag, in, depth)) return false;
    if (!Known(field, wire)) {
      *found = true;
    } else if (out) {
      out->append(reinterpret_cast<const char*>(start), static_cast<std::size_t>(in->p - start));
    }
  }
  return true;
}

}  // namespace

UnknownFields FindUnknownFields(const Descriptor* type, const uint8_t* bytes, std::size_t size,
                                std::string* stripped) {
  Reader in{bytes, bytes + size};
  bool found = false;
  if (stripped) stripped->clear();
  if (!Scan(type, &in, 0, stripped, &found)) return UnknownFields::kMalformed;
  return found ? UnknownFields::kSome : UnknownFields::kNone;
}

}  // namespace gradientd::protocol
