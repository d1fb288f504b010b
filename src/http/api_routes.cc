#include "http/api_routes.h"

#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <cmath>
#include <map>

#include "http/query_string.h"
#include "http/replies.h"

namespace gradientd::http {
namespace beast_http = boost::beast::http;
namespace {

constexpr std::string_view kSeries = "/api/v1/series";
constexpr std::string_view kGradient = "/gradient";

using Parameters = std::map<std::string, std::string>;

// Every parameter given is one of `allowed`.
Status CheckKnown(const Parameters& parameters, std::initializer_list<std::string_view> allowed) {
  for (const auto& [name, value] : parameters) {
    bool known = false;
    for (std::string_view a : allowed) known = known || name == a;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Status::InvalidArgument("unknown query parameter '" + name + "' (this path takes " +
                                     (list.empty() ? "none" : list) + ")");
    }
  }
  return Status::Ok();
}

const std::string* Find(const Parameters& parameters, std::string_view name) {
  const auto it = parameters.find(std::string(name));
  return it == parameters.end() ? nullptr : &it->second;
}

Status ParseViewParameter(const Parameters& parameters, v1::View* view) {
  const std::string* text = Find(parameters, "view");
  if (text == nullptr) return Status::Ok();
  if (*text == "all") {
    *view = v1::VIEW_ALL;
  } else if (*text == "window") {
    *view = v1::VIEW_WINDOW;
  } else if (*text == "decayed") {
    *view = v1::VIEW_DECAYED;
  } else {
    return Status::InvalidArgument("view must be all, window or decayed, got '" + *text + "'");
  }
  return Status::Ok();
}

Status ParsePageSize(const std::string& text, uint32_t* page_size) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *page_size);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("page_size must be a whole number from 0 to 4294967295, got '" +
                                   text + "'");
  }
  return Status::Ok();
}

Status ParseFinite(std::string_view name, const std::string& text, double* number) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *number);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(*number)) {
    return Status::InvalidArgument(std::string(name) + " must be a finite number, got '" + text +
                                   "'");
  }
  return Status::Ok();
}

Status BuildList(const Parameters& parameters, v1::ListSeries* list) {
  if (Status s = CheckKnown(parameters, {"page_size", "page_token", "prefix", "view"}); !s.ok()) {
    return s;
  }
  if (const std::string* text = Find(parameters, "page_size")) {
    uint32_t page_size = 0;
    if (Status s = ParsePageSize(*text, &page_size); !s.ok()) return s;
    list->set_page_size(page_size);
  }
  if (const std::string* token = Find(parameters, "page_token")) list->set_page_token(*token);
  if (const std::string* prefix = Find(parameters, "prefix")) list->set_prefix(*prefix);
  v1::View view = v1::VIEW_ALL;
  if (Status s = ParseViewParameter(parameters, &view); !s.ok()) return s;
  list->set_view(view);
  return Status::Ok();
}

Status BuildGradient(const Parameters& parameters, v1::GradientQuery* query) {
  if (Status s = CheckKnown(parameters, {"m", "b", "view"}); !s.ok()) return s;
  for (std::string_view name : {"m", "b"}) {
    const std::string* text = Find(parameters, name);
    if (text == nullptr) continue;
    double number = 0;
    if (Status s = ParseFinite(name, *text, &number); !s.ok()) return s;
    name == "m" ? query->set_m(number) : query->set_b(number);
  }
  v1::View view = v1::VIEW_ALL;
  if (Status s = ParseViewParameter(parameters, &view); !s.ok()) return s;
  query->set_view(view);
  return Status::Ok();
}

Status BuildFit(const Parameters& parameters, v1::FitQuery* query) {
  if (Status s = CheckKnown(parameters, {"view"}); !s.ok()) return s;
  v1::View view = v1::VIEW_ALL;
  if (Status s = ParseViewParameter(parameters, &view); !s.ok()) return s;
  query->set_view(view);
  return Status::Ok();
}

std::string ReplyJson(const google::protobuf::Message& reply) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(reply, &json, options);
  return json;
}

}  // namespace

bool ApiRoutes::Handle(const Request& request, Response* response) {
  if (!PathOf(request.target()).starts_with(kPrefix)) return false;
  v1::Request wire;
  if (Status s = BuildRequest(request.target(), &wire); !s.ok()) {
    SetJsonError(s, response);
  } else {
    Answer(wire, response);
  }
  return true;
}

Status ApiRoutes::BuildRequest(std::string_view target, v1::Request* request) const {
  const std::string_view path = PathOf(target);
  Parameters parameters;
  if (Status s = ParseQuery(QueryOf(target), &parameters); !s.ok()) return s;
  if (path == kSeries) return BuildList(parameters, request->mutable_list());
  if (!path.starts_with(kSeries) || path.size() == kSeries.size() || path[kSeries.size()] != '/') {
    return Status::NotFound("no such path: " + std::string(path));
  }
  std::string_view raw_name = path.substr(kSeries.size() + 1);
  bool gradient = false;
  if (const auto slash = raw_name.find('/'); slash != std::string_view::npos) {
    if (raw_name.substr(slash) != kGradient) {
      return Status::NotFound("no such path: " + std::string(path) +
                              " (a series name's '/' is written %2F)");
    }
    raw_name = raw_name.substr(0, slash);
    gradient = true;
  }
  std::string name;
  if (Status s = PercentDecode(raw_name, false, &name); !s.ok()) {
    return Status::InvalidArgument("series name: " + s.message());
  }
  if (gradient) {
    request->mutable_gradient()->set_series(name);
    return BuildGradient(parameters, request->mutable_gradient());
  }
  request->mutable_fit()->set_series(name);
  return BuildFit(parameters, request->mutable_fit());
}

void ApiRoutes::Answer(const v1::Request& request, Response* response) {
  v1::Response reply;
  handler_.Handle(request, &reply);  // queries change nothing: nothing to wait for
  switch (reply.body_case()) {
    case v1::Response::kError:
      SetJsonError(reply.error(), response);
      break;
    case v1::Response::kSeriesList:
      SetJson(beast_http::status::ok, ReplyJson(reply.series_list()), response);
      break;
    case v1::Response::kFit:
      SetJson(beast_http::status::ok, ReplyJson(reply.fit()), response);
      break;
    case v1::Response::kGradient:
      SetJson(beast_http::status::ok, ReplyJson(reply.gradient()), response);
      break;
    default:
      SetJsonError(Status::Internal("unexpected reply to a query"), response);
  }
}

}  // namespace gradientd::http
