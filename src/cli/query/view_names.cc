#include "cli/query/view_names.h"

namespace gradientd::cli {

Status ParseView(std::string_view flag, std::string_view text, v1::View* view) {
  if (text == "all") {
    *view = v1::VIEW_ALL;
  } else if (text == "window") {
    *view = v1::VIEW_WINDOW;
  } else if (text == "decayed") {
    *view = v1::VIEW_DECAYED;
  } else {
    return Status::InvalidArgument(std::string(flag) + " must be all, window or decayed, got '" +
                                   std::string(text) + "'");
  }
  return Status::Ok();
}

Status ParseDescentMode(std::string_view flag, std::string_view text, v1::DescentMode* mode) {
  if (text == "auto") {
    *mode = v1::DESCENT_MODE_UNSPECIFIED;
  } else if (text == "plain") {
    *mode = v1::DESCENT_MODE_PLAIN;
  } else if (text == "standardized") {
    *mode = v1::DESCENT_MODE_STANDARDIZED;
  } else {
    return Status::InvalidArgument(std::string(flag) +
                                   " must be auto, plain or standardized, got '" +
                                   std::string(text) + "'");
  }
  return Status::Ok();
}

std::string ViewName(v1::View view) {
  switch (view) {
    case v1::VIEW_WINDOW:
      return "window";
    case v1::VIEW_DECAYED:
      return "decayed";
    default:
      return "all";
  }
}

std::string DescentModeName(v1::DescentMode mode) {
  switch (mode) {
    case v1::DESCENT_MODE_PLAIN:
      return "plain";
    case v1::DESCENT_MODE_STANDARDIZED:
      return "standardized";
    default:
      return "auto";
  }
}

}  // namespace gradientd::cli
