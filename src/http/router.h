// Router: the HTTP side's front, sans-I/O. Takes a parsed request and
// returns the response: GET and HEAD only (405 otherwise), the bearer token
// checked unless a Routes calls the path public, then each Routes asked in
// the order added; 404 if none answers. HEAD is answered as GET without the
// body.
//
// Auth (with an authenticator): `Authorization: Bearer TOKEN` whose token
// has the QUERY role. None or an unknown token: 401 with
// `WWW-Authenticate: Bearer`; a token without the role: 403. Tokens are
// never logged or echoed.
//
// Thread-safety: Add before serving; Handle from any thread at once.
#pragma once

#include <memory>
#include <vector>

#include "auth/authenticator.h"
#include "http/routes.h"

namespace gradientd::http {

class Router {
 public:
  // With an authenticator (which must outlive the Router) every non-public
  // path needs a token with the QUERY role; without one all are open.
  explicit Router(const auth::Authenticator* authenticator = nullptr)
      : authenticator_(authenticator) {}

  void Add(std::shared_ptr<Routes> routes) { routes_.push_back(std::move(routes)); }

  Response Handle(const Request& request) const;

 private:
  bool IsPublic(std::string_view path) const;
  // True when the request may go on; else false, with the 401 or 403 set.
  bool Authorize(const Request& request, Response* refusal) const;
  void Dispatch(const Request& request, Response* response) const;

  const auth::Authenticator* const authenticator_;
  std::vector<std::shared_ptr<Routes>> routes_;
};

}  // namespace gradientd::http
