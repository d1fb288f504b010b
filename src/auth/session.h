// Session: access control for one connection, in front of the shared
// RequestHandler (the Service). Answers Hello itself, refuses requests
// before a valid Hello (UNAUTHENTICATED) and requests the token's roles do
// not allow (PERMISSION_DENIED), and passes the rest on. A refused request
// never reaches the handler, so it changes nothing.
//
// After a reload of the auth file, the next request revalidates the token:
// a removed token makes the connection unauthenticated, changed roles apply.
//
// Sans-I/O; not synchronised: one per connection, driven like Connection.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/authenticator.h"
#include "auth/token_file.h"
#include "gradientd/v1/gradientd.pb.h"
#include "metrics/metrics.h"
#include "protocol/connection.h"

namespace gradientd::auth {

// The role a request needs; nullopt for Hello and for an empty request.
std::optional<v1::Role> RequiredRole(const v1::Request& request);
// "ingest", "gradient", ... for messages.
std::string_view OperationName(const v1::Request& request);

// Why a request was refused (gradientd_auth_failures_total{reason}).
enum class AuthFailure : std::size_t {
  kNoToken,           // a Hello without a token
  kInvalidToken,      // a Hello whose token the auth file does not hold
  kNotAuthenticated,  // a request before a valid Hello
  kTokenRevoked,      // the token went with a reload
  kPermissionDenied,  // the token lacks the role
  kCount
};
// The label sets of the family, in AuthFailure's order.
std::vector<metrics::Labels> AuthFailureLabels();

class Session : public protocol::RequestHandler {
 public:
  // All must outlive the Session; `failures` (by AuthFailure) may be null.
  Session(protocol::RequestHandler& next, const Authenticator& authenticator,
          metrics::CounterFamily* failures = nullptr)
      : next_(next), authenticator_(authenticator), failures_(failures) {}

  uint64_t Handle(const v1::Request& request, v1::Response* response) override;

  // The authenticated token's name; empty before a valid Hello.
  const std::string& name() const { return name_; }
  RoleSet roles() const { return roles_; }

 private:
  void Hello(const v1::Hello& hello, v1::Response* response);
  // Refreshes name and roles after a reload; false if the token is gone.
  bool Revalidate();
  void CountFailure(AuthFailure reason) {
    if (failures_ != nullptr) failures_->at(static_cast<std::size_t>(reason)).Add();
  }

  protocol::RequestHandler& next_;
  const Authenticator& authenticator_;
  metrics::CounterFamily* const failures_;
  std::optional<Digest> digest_;  // of the authenticated token
  std::string name_;
  RoleSet roles_;
  uint64_t generation_ = 0;  // of the table that granted them
};

}  // namespace gradientd::auth
