#include "protocol/endpoint.h"

#include <charconv>

namespace gradientd::protocol {

Status ParseEndpoint(std::string_view text, Endpoint* endpoint) {
  std::string_view host = text;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("bad address '" + std::string(text) + "': missing ']'");
    }
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') {
        return Status::InvalidArgument("bad address '" + std::string(text) +
                                       "': expected ':' after ']'");
      }
      port = text.substr(close + 2);
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    if (text.find(':') != colon) {
      return Status::InvalidArgument("bad address '" + std::string(text) +
                                     "': write IPv6 addresses as [ADDR]:PORT");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) {
    return Status::InvalidArgument("bad address '" + std::string(text) + "': no host");
  }
  uint16_t value = kDefaultPort;
  if (!port.empty() || text.ends_with(':')) {
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size()) {
      return Status::InvalidArgument("bad port '" + std::string(port) + "' in '" +
                                     std::string(text) + "': expected 0..65535");
    }
  }
  endpoint->host = std::string(host);
  endpoint->port = value;
  return Status::Ok();
}

std::string FormatEndpoint(std::string_view host, uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  return (v6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" + std::to_string(port);
}

}  // namespace gradientd::protocol
