// Unknown fields, at every depth of a serialized message: protobuf keeps
// them when parsing (and a 16 MiB frame of tiny unknown fields costs ~9x that
// in memory), so the request path strips them before parsing.
#pragma once

#include <google/protobuf/descriptor.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace gradientd::protocol {

enum class UnknownFields { kNone, kSome, kMalformed };

// Whether `bytes` (a serialized `type`) has unknown fields, at any depth: a
// field number `type` does not have, or one sent with a wire type its field
// cannot have (protobuf keeps both as unknown fields). If `stripped` is not
// null, it receives the message without them, at every depth.
UnknownFields FindUnknownFields(const google::protobuf::Descriptor* type, const uint8_t* bytes,
                                std::size_t size, std::string* stripped = nullptr);

}  // namespace gradientd::protocol
