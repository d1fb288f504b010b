#include "http/dashboard_routes.h"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <utility>

#include "http/embedded_assets.h"
#include "http/query_string.h"
#include "http/replies.h"

namespace gradientd::http {
namespace {

namespace beast_http = boost::beast::http;

constexpr std::string_view kApiPrefix = "/api/v1/series/";
constexpr std::string_view kSeriesPagePrefix = "/series/";
// The page's own files only: no inline script, nothing from elsewhere.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

int64_t SystemNowUnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (byte < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
      out->append(escaped);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// Shortest text that reads back as the same double; null when not finite.
void AppendJsonNumber(double value, std::string* out) {
  if (!std::isfinite(value)) {
    out->append("null");
    return;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  out->append(text);
}

void AppendLine(const v1::Line& line, std::string* out) {
  out->append("{\"m\":");
  AppendJsonNumber(line.m(), out);
  out->append(",\"b\":");
  AppendJsonNumber(line.b(), out);
  out->append(",\"loss\":");
  if (line.has_loss()) {
    AppendJsonNumber(line.loss(), out);
  } else {
    out->append("null");
  }
  out->push_back('}');
}

void SetBody(beast_http::status status, std::string_view content_type, std::string body,
             Response* response) {
  response->result(status);
  response->set(beast_http::field::content_type, content_type);
  response->set("X-Content-Type-Options", "nosniff");
  response->body() = std::move(body);
  response->prepare_payload();
}

void SetJsonNoStore(std::string body, Response* response) {
  SetJson(beast_http::status::ok, std::move(body), response);
  response->set(beast_http::field::cache_control, "no-store");
  response->prepare_payload();
}

// The `view` parameter (all when absent) and its name; false, with the 400
// set, for a bad query string or a view that is not all, window or decayed.
bool ParseView(const Request& request, v1::View* view, std::string* name, Response* response) {
  std::map<std::string, std::string> parameters;
  if (Status s = ParseQuery(QueryOf(request.target()), &parameters); !s.ok()) {
    SetJsonError(s, response);
    return false;
  }
  const auto it = parameters.find("view");
  *name = it == parameters.end() ? "all" : it->second;
  if (*name == "all") {
    *view = v1::VIEW_ALL;
  } else if (*name == "window") {
    *view = v1::VIEW_WINDOW;
  } else if (*name == "decayed") {
    *view = v1::VIEW_DECAYED;
  } else {
    SetJsonError(Status::InvalidArgument("view must be all, window or decayed"), response);
    return false;
  }
  return true;
}

const EmbeddedAsset* FindAsset(std::string_view path) {
  if (path.starts_with(kSeriesPagePrefix)) {
    // Every series' page is one shell; "/series/" alone names none.
    if (path.size() == kSeriesPagePrefix.size()) return nullptr;
    path = kSeriesPagePrefix;
  }
  for (const EmbeddedAsset& asset : EmbeddedAssets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

void AppendPoints(const LiveSample& sample, std::string* out) {
  out->append("[");
  bool first = true;
  for (const auto& [x, y] : sample.points) {
    if (!first) out->push_back(',');
    first = false;
    out->push_back('[');
    AppendJsonNumber(x, out);
    out->push_back(',');
    AppendJsonNumber(y, out);
    out->push_back(']');
  }
  out->append("]");
}

}  // namespace

bool ParseSeriesApiPath(std::string_view path, std::string* series, std::string* what) {
  if (!path.starts_with(kApiPrefix)) return false;
  const std::string_view rest = path.substr(kApiPrefix.size());
  const std::size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  const std::string_view last = rest.substr(slash + 1);
  if (last != "sample" && last != "history") return false;
  if (!PercentDecode(rest.substr(0, slash), /*plus_is_space=*/false, series).ok()) return false;
  *what = std::string(last);
  return true;
}

DashboardRoutes::DashboardRoutes(protocol::RequestHandler& service, LivePoints& points,
                                 std::function<int64_t()> now_unix_nanos)
    : service_(service),
      points_(points),
      now_(now_unix_nanos ? std::move(now_unix_nanos) : SystemNowUnixNanos) {}

bool DashboardRoutes::IsPublic(std::string_view path) const { return FindAsset(path) != nullptr; }

bool DashboardRoutes::Handle(const Request& request, Response* response) {
  const std::string_view path = PathOf(request.target());
  std::string series;
  std::string what;
  const EmbeddedAsset* asset = FindAsset(path);
  const bool api = !asset && ParseSeriesApiPath(path, &series, &what);
  if (!asset && !api) return false;
  if (request.method() != beast_http::verb::get && request.method() != beast_http::verb::head) {
    response->set(beast_http::field::allow, "GET, HEAD");
    SetBody(beast_http::status::method_not_allowed, "text/plain", "only GET\n", response);
    return true;
  }
  if (asset) {
    response->set(beast_http::field::cache_control, "no-cache");
    response->set("Content-Security-Policy", kContentSecurityPolicy);
    SetBody(beast_http::status::ok, asset->content_type, std::string(asset->body), response);
  } else if (what == "sample") {
    ServeSample(series, request, response);
  } else {
    ServeHistory(series, request, response);
  }
  return true;
}

void DashboardRoutes::ServeSample(const std::string& series, const Request& request,
                                  Response* response) {
  v1::View view;
  std::string view_name;
  if (!ParseView(request, &view, &view_name, response)) return;
  v1::Request fit_request;
  fit_request.mutable_fit()->set_series(series);
  fit_request.mutable_fit()->set_view(view);
  v1::Response reply;
  service_.Handle(fit_request, &reply);
  if (reply.has_error()) return SetJsonError(reply.error(), response);
  const v1::FitReply& fit = reply.fit();
  const bool watched = points_.Watch(series, now_());
  const std::optional<LiveSample> sample = points_.Sample(series);

  std::string body = "{\"series\":";
  AppendJsonString(fit.series(), &body);
  body.append(",\"view\":");
  AppendJsonString(view_name, &body);
  body.append(",\"n\":" + std::to_string(fit.n()));
  body.append(",\"descent\":");
  AppendLine(fit.descent(), &body);
  body.append(",\"least_squares\":");
  if (fit.has_least_squares()) {
    AppendLine(fit.least_squares(), &body);
  } else {
    body.append("null");
  }
  body.append(",\"r_squared\":");
  if (fit.has_r_squared()) {
    AppendJsonNumber(fit.r_squared(), &body);
  } else {
    body.append("null");
  }
  body.append(",\"sampled\":");
  body.append(watched && sample ? "true" : "false");
  body.append(",\"seen\":" + std::to_string(sample ? sample->seen : 0));
  body.append(",\"points\":");
  AppendPoints(sample.value_or(LiveSample{}), &body);
  body.append("}");
  SetJsonNoStore(std::move(body), response);
}

void DashboardRoutes::ServeHistory(const std::string& series, const Request& request,
                                   Response* response) {
  v1::View view;
  std::string view_name;
  if (!ParseView(request, &view, &view_name, response)) return;
  v1::Request gradient_request;
  gradient_request.mutable_gradient()->set_series(series);
  gradient_request.mutable_gradient()->set_view(view);
  v1::Response reply;
  service_.Handle(gradient_request, &reply);
  // A series without points has no loss yet: its history is what it was.
  if (reply.has_error() && reply.error().code() != v1::Error::FAILED_PRECONDITION) {
    return SetJsonError(reply.error(), response);
  }
  const int64_t now = now_();
  points_.Watch(series, now);
  if (reply.has_gradient()) {
    const v1::GradientReply& gradient = reply.gradient();
    points_.RecordHistory(series,
                          {now, gradient.loss(),
                           std::hypot(gradient.slope_gradient(), gradient.intercept_gradient())});
  }
  std::string body = "{\"series\":";
  AppendJsonString(series, &body);
  body.append(",\"history\":[");
  bool first = true;
  for (const HistoryEntry& entry : points_.History(series)) {
    if (!first) body.push_back(',');
    first = false;
    body.append("{\"t\":");
    AppendJsonNumber(static_cast<double>(entry.unix_nanos) / 1e9, &body);
    body.append(",\"loss\":");
    AppendJsonNumber(entry.loss, &body);
    body.append(",\"gradient_norm\":");
    AppendJsonNumber(entry.gradient_norm, &body);
    body.push_back('}');
  }
  body.append("]}");
  SetJsonNoStore(std::move(body), response);
}

}  // namespace gradientd::http
