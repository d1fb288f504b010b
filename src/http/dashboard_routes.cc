#include "http/dashboard_routes.h"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <utility>

#include "http/embedded_assets.h"

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

void SetJson(beast_http::status status, std::string body, Response* response) {
  response->set(beast_http::field::cache_control, "no-store");
  SetBody(status, "application/json", std::move(body), response);
}

void SetJsonError(beast_http::status status, std::string_view code, std::string_view message,
                  Response* response) {
  std::string body = "{\"error\":{\"code\":";
  AppendJsonString(code, &body);
  body.append(",\"message\":");
  AppendJsonString(message, &body);
  body.append("}}");
  SetJson(status, std::move(body), response);
}

// A service error as the HTTP status a browser's script can tell apart.
void SetServiceError(const v1::Error& error, Response* response) {
  beast_http::status status = beast_http::status::internal_server_error;
  switch (error.code()) {
    case v1::Error::INVALID_ARGUMENT: status = beast_http::status::bad_request; break;
    case v1::Error::NOT_FOUND: status = beast_http::status::not_found; break;
    case v1::Error::FAILED_PRECONDITION: status = beast_http::status::conflict; break;
    case v1::Error::RESOURCE_EXHAUSTED: status = beast_http::status::service_unavailable; break;
    default: break;
  }
  SetJsonError(status, v1::Error::Code_Name(error.code()), error.message(), response);
}

// The value of `name` in the target's query string, percent-decoded;
// nullopt when absent.
std::optional<std::string> QueryParameter(std::string_view target, std::string_view name) {
  const std::size_t question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t equals = pair.find('=');
    if (pair.substr(0, equals) != name) continue;
    std::string value;
    if (equals == std::string_view::npos) return value;
    if (!PercentDecode(pair.substr(equals + 1), &value)) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

// The `view` parameter; false (with the 400 set) when it names no view.
bool ParseView(const Request& request, v1::View* view, Response* response) {
  const std::optional<std::string> text = QueryParameter(request.target(), "view");
  if (!text || *text == "all") {
    *view = v1::VIEW_ALL;
  } else if (*text == "window") {
    *view = v1::VIEW_WINDOW;
  } else if (*text == "decayed") {
    *view = v1::VIEW_DECAYED;
  } else {
    SetJsonError(beast_http::status::bad_request, "INVALID_ARGUMENT",
                 "view must be all, window or decayed", response);
    return false;
  }
  return true;
}

std::string_view PathOf(const Request& request) {
  const std::string_view target = request.target();
  return target.substr(0, target.find('?'));
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

bool PercentDecode(std::string_view text, std::string* decoded) {
  decoded->clear();
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded->push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return false;
    unsigned value = 0;
    for (std::size_t j = i + 1; j <= i + 2; ++j) {
      const char c = text[j];
      const int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
      if (digit < 0) return false;
      value = value * 16 + static_cast<unsigned>(digit);
    }
    decoded->push_back(static_cast<char>(value));
    i += 2;
  }
  return true;
}

bool ParseSeriesApiPath(std::string_view path, std::string* series, std::string* what) {
  if (!path.starts_with(kApiPrefix)) return false;
  const std::string_view rest = path.substr(kApiPrefix.size());
  const std::size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  const std::string_view last = rest.substr(slash + 1);
  if (last != "sample" && last != "history") return false;
  if (!PercentDecode(rest.substr(0, slash), series)) return false;
  *what = std::string(last);
  return true;
}

DashboardRoutes::DashboardRoutes(service::Service& service, LivePoints& points,
                                 std::function<int64_t()> now_unix_nanos)
    : service_(service),
      points_(points),
      now_(now_unix_nanos ? std::move(now_unix_nanos) : SystemNowUnixNanos) {}

bool DashboardRoutes::IsPublic(std::string_view path) const { return FindAsset(path) != nullptr; }

bool DashboardRoutes::Handle(const Request& request, Response* response) {
  const std::string_view path = PathOf(request);
  std::string series;
  std::string what;
  const EmbeddedAsset* asset = FindAsset(path);
  const bool api = !asset && ParseSeriesApiPath(path, &series, &what);
  if (!asset && !api) return false;
  if (request.method() != beast_http::verb::get) {
    response->set(beast_http::field::allow, "GET");
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
  if (!ParseView(request, &view, response)) return;
  v1::Request fit_request;
  fit_request.mutable_fit()->set_series(series);
  fit_request.mutable_fit()->set_view(view);
  v1::Response reply;
  service_.Handle(fit_request, &reply);
  if (reply.has_error()) return SetServiceError(reply.error(), response);
  const v1::FitReply& fit = reply.fit();
  const bool watched = points_.Watch(series, now_());
  const std::optional<LiveSample> sample = points_.Sample(series);

  std::string body = "{\"series\":";
  AppendJsonString(fit.series(), &body);
  body.append(",\"view\":");
  AppendJsonString(QueryParameter(request.target(), "view").value_or("all"), &body);
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
  SetJson(beast_http::status::ok, std::move(body), response);
}

void DashboardRoutes::ServeHistory(const std::string& series, const Request& request,
                                   Response* response) {
  v1::View view;
  if (!ParseView(request, &view, response)) return;
  v1::Request gradient_request;
  gradient_request.mutable_gradient()->set_series(series);
  gradient_request.mutable_gradient()->set_view(view);
  v1::Response reply;
  service_.Handle(gradient_request, &reply);
  // A series without points has no loss yet: its history is what it was.
  if (reply.has_error() && reply.error().code() != v1::Error::FAILED_PRECONDITION) {
    return SetServiceError(reply.error(), response);
  }
  const int64_t now = now_();
  points_.Watch(series, now);
  if (reply.has_gradient()) {
    const v1::GradientReply& gradient = reply.gradient();
    points_.RecordHistory(
        series, {now, gradient.loss(),
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
  SetJson(beast_http::status::ok, std::move(body), response);
}

}  // namespace gradientd::http
