#include "protocol/unknown_fields.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format.h>
#include <google/protobuf/wire_format_lite.h>

namespace gradientd::protocol {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormat;
using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool Known(const FieldDescriptor* field, WireFormatLite::WireType wire) {
  if (field == nullptr) return false;
  if (wire == WireFormat::WireTypeForFieldType(field->type())) return true;
  return field->is_packable() && wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
}

// Scans `in` up to its limit; `base` is the buffer its positions are in.
bool Scan(const Descriptor* type, const uint8_t* base, CodedInputStream* in, std::string* out,
          bool* found) {
  while (in->BytesUntilLimit() > 0) {
    const uint32_t tag = in->ReadTag();
    if (tag == 0) return false;
    const auto wire = WireFormatLite::GetTagWireType(tag);
    const FieldDescriptor* field =
        type->FindFieldByNumber(static_cast<int>(WireFormatLite::GetTagFieldNumber(tag)));
    const bool known = Known(field, wire);
    if (known && field->type() == FieldDescriptor::TYPE_MESSAGE) {
      uint32_t length = 0;
      if (!in->ReadVarint32(&length) || static_cast<int>(length) < 0 ||
          static_cast<int>(length) > in->BytesUntilLimit()) {
        return false;
      }
      const auto limit = in->PushLimit(static_cast<int>(length));
      std::string inner;
      if (!Scan(field->message_type(), base, in, out ? &inner : nullptr, found)) return false;
      in->PopLimit(limit);
      if (out) {
        AppendVarint(tag, out);
        AppendVarint(inner.size(), out);
        out->append(inner);
      }
      continue;
    }
    const int start = in->CurrentPosition();
    if (!WireFormatLite::SkipField(in, tag)) return false;
    if (!known) {
      *found = true;
    } else if (out) {
      AppendVarint(tag, out);
      out->append(reinterpret_cast<const char*>(base) + start,
                  static_cast<std::size_t>(in->CurrentPosition() - start));
    }
  }
  return true;
}

}  // namespace

UnknownFields FindUnknownFields(const Descriptor* type, const uint8_t* bytes, std::size_t size,
                                std::string* stripped) {
  CodedInputStream in(bytes, static_cast<int>(size));
  in.PushLimit(static_cast<int>(size));
  bool found = false;
  if (stripped) stripped->clear();
  if (!Scan(type, bytes, &in, stripped, &found)) return UnknownFields::kMalformed;
  return found ? UnknownFields::kSome : UnknownFields::kNone;
}

}  // namespace gradientd::protocol
