// Endpoint: the "HOST:PORT" text that names a gradientd server. Pure parsing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace gradientd::protocol {

inline constexpr uint16_t kDefaultPort = 7878;

struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

// Parses "HOST:PORT", "[IPv6]:PORT" or "HOST" (the default port). The error
// message says what is wrong.
Status ParseEndpoint(std::string_view text, Endpoint* endpoint);

// "HOST:PORT", with an IPv6 address in brackets ("[::1]:7878"): the form
// ParseEndpoint reads back.
std::string FormatEndpoint(std::string_view host, uint16_t port);

}  // namespace gradientd::protocol
