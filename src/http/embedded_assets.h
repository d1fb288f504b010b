// The files compiled into the binary (cmake/EmbedAssets.cmake): the
// dashboard's own pages, script and style from src/http/dashboard/, and
// Debian's Chart.js with its license.
#pragma once

#include <span>
#include <string_view>

namespace gradientd::http {

struct EmbeddedAsset {
  std::string_view path;  // the URL path it is served at
  std::string_view content_type;
  std::string_view body;
};

std::span<const EmbeddedAsset> EmbeddedAssets();

}  // namespace gradientd::http
