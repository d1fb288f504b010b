// A client's connect and call for tests, where failing is a test failure
// rather than a value to handle.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "client/client.h"

namespace gradientd::testing {

// A client connected to `address`, or null (with a test failure).
inline std::unique_ptr<client::Client> ConnectClient(const std::string& address) {
  std::unique_ptr<client::Client> c;
  const Status s = client::Client::Connect(address, &c);
  EXPECT_TRUE(s.ok()) << s.message();
  return c;
}

// `request`'s response; a failed call is a test failure.
inline v1::Response CallClient(client::Client& c, v1::Request request) {
  v1::Response response;
  const Status s = c.Call(request, &response);
  EXPECT_TRUE(s.ok()) << s.message();
  return response;
}

}  // namespace gradientd::testing
