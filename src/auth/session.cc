#include "auth/session.h"

#include "protocol/error_codes.h"

namespace gradientd::auth {

std::optional<v1::Role> RequiredRole(const v1::Request& request) {
  switch (request.body_case()) {
    case v1::Request::kIngest:
      return v1::PRODUCE;
    case v1::Request::kGradient:
    case v1::Request::kFit:
    case v1::Request::kList:
      return v1::QUERY;
    case v1::Request::kStep:
    case v1::Request::kConfigure:
    case v1::Request::kReset:
      return v1::ADMIN;
    case v1::Request::kHello:
    case v1::Request::BODY_NOT_SET:
      break;
  }
  return std::nullopt;
}

std::string_view OperationName(const v1::Request& request) {
  switch (request.body_case()) {
    case v1::Request::kIngest:
      return "ingest";
    case v1::Request::kGradient:
      return "gradient";
    case v1::Request::kFit:
      return "fit";
    case v1::Request::kList:
      return "list";
    case v1::Request::kStep:
      return "step";
    case v1::Request::kConfigure:
      return "configure";
    case v1::Request::kReset:
      return "reset";
    case v1::Request::kHello:
      return "hello";
    case v1::Request::BODY_NOT_SET:
      break;
  }
  return "an empty request";
}

std::vector<metrics::Labels> AuthFailureLabels() {
  return metrics::LabelProduct(
      {{"reason",
        {"no_token", "invalid_token", "not_authenticated", "token_revoked", "permission_denied"}}});
}

uint64_t Session::Handle(const v1::Request& request, v1::Response* response) {
  if (request.has_hello()) {
    Hello(request.hello(), response);
    return 0;
  }
  if (!digest_) {
    CountFailure(AuthFailure::kNotAuthenticated);
    protocol::SetError(
        Status::Unauthenticated("not authenticated: this server needs a Hello with a valid token "
                                "first (gradctl --token or $GRADIENTD_TOKEN)"),
        response);
    return 0;
  }
  if (!Revalidate()) {
    const std::string old_name = std::move(name_);
    digest_.reset();
    name_.clear();
    roles_ = RoleSet();
    CountFailure(AuthFailure::kTokenRevoked);
    protocol::SetError(Status::Unauthenticated("the token '" + old_name +
                                               "' is no longer valid (the auth file was "
                                               "reloaded); send a Hello with a valid token"),
                       response);
    return 0;
  }
  if (const std::optional<v1::Role> role = RequiredRole(request); role && !roles_.Has(*role)) {
    CountFailure(AuthFailure::kPermissionDenied);
    protocol::SetError(
        Status::PermissionDenied("'" + name_ + "' (roles: " + roles_.ToString() + ") may not " +
                                 std::string(OperationName(request)) + ": it needs the " +
                                 std::string(RoleName(*role)) + " role"),
        response);
    return 0;
  }
  return next_.Handle(request, response);
}

void Session::Hello(const v1::Hello& hello, v1::Response* response) {
  const Digest digest = DigestOf(hello.token());
  std::optional<Authenticator::Grant> grant = authenticator_.Authenticate(digest);
  if (!grant) {
    // Keeps the identity it had, if any: a refused request changes nothing.
    CountFailure(hello.token().empty() ? AuthFailure::kNoToken : AuthFailure::kInvalidToken);
    protocol::SetError(
        Status::Unauthenticated(hello.token().empty() ? "the Hello carries no token"
                                                      : "the token is not valid on this server"),
        response);
    return;
  }
  digest_ = digest;
  name_ = std::move(grant->name);
  roles_ = grant->roles;
  generation_ = grant->generation;
  v1::HelloReply* reply = response->mutable_hello();
  reply->set_name(name_);
  for (const v1::Role role : roles_.roles()) reply->add_roles(role);
}

bool Session::Revalidate() {
  if (authenticator_.generation() == generation_) return true;
  std::optional<Authenticator::Grant> grant = authenticator_.Authenticate(*digest_);
  if (!grant) return false;
  name_ = std::move(grant->name);
  roles_ = grant->roles;
  generation_ = grant->generation;
  return true;
}

}  // namespace gradientd::auth
