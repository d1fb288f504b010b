#include "http/router.h"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <cctype>

#include "http/query_string.h"
#include "http/replies.h"

namespace gradientd::http {
namespace beast_http = boost::beast::http;
namespace {

// The token of "Bearer TOKEN" (the scheme in any case), or "" if the
// header is not of that form.
std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return {};
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

void Refuse(StatusCode code, std::string message, Response* response) {
  SetJsonError(Status(code, std::move(message)), response);
  if (code == StatusCode::kUnauthenticated) {
    response->set(beast_http::field::www_authenticate, R"(Bearer realm="gradientd")");
  }
}

}  // namespace

bool Router::IsPublic(std::string_view path) const {
  for (const auto& routes : routes_) {
    if (routes->IsPublic(path)) return true;
  }
  return false;
}

bool Router::Authorize(const Request& request, Response* refusal) const {
  if (authenticator_ == nullptr) return true;
  const auto header = request.find(beast_http::field::authorization);
  if (header == request.end()) {
    Refuse(StatusCode::kUnauthenticated, "this server needs 'Authorization: Bearer TOKEN'",
           refusal);
    return false;
  }
  const std::string_view token = BearerToken(header->value());
  if (token.empty()) {
    Refuse(StatusCode::kUnauthenticated, "the Authorization header is not 'Bearer TOKEN'", refusal);
    return false;
  }
  const auto grant = authenticator_->Authenticate(auth::DigestOf(token));
  if (!grant) {
    Refuse(StatusCode::kUnauthenticated, "the token is not valid", refusal);
    return false;
  }
  if (!grant->roles.Has(v1::QUERY)) {
    Refuse(StatusCode::kPermissionDenied,
           "token '" + grant->name + "' lacks the query role this needs", refusal);
    return false;
  }
  return true;
}

void Router::Dispatch(const Request& request, Response* response) const {
  for (const auto& routes : routes_) {
    if (routes->Handle(request, response)) return;
  }
  SetJsonError(Status::NotFound("no such path: " + std::string(PathOf(request.target()))),
               response);
}

Response Router::Handle(const Request& request) const {
  Response response;
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  const bool head = request.method() == beast_http::verb::head;
  const std::string_view target = request.target();
  if (request.method() != beast_http::verb::get && !head) {
    SetJsonError(Status::InvalidArgument("method " + std::string(request.method_string()) +
                                         " is not allowed: this server is read-only over HTTP"),
                 &response);
    response.result(beast_http::status::method_not_allowed);
    response.set(beast_http::field::allow, "GET, HEAD");
  } else if (target.empty() || target.front() != '/') {
    SetJsonError(Status::InvalidArgument("the request target must be a path"), &response);
  } else if (IsPublic(PathOf(target)) || Authorize(request, &response)) {
    if (head) {
      Request as_get = request;
      as_get.method(beast_http::verb::get);
      Dispatch(as_get, &response);
    } else {
      Dispatch(request, &response);
    }
  }
  response.prepare_payload();
  if (head) response.body().clear();  // Content-Length stays that of the GET
  return response;
}

}  // namespace gradientd::http
