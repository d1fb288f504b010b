// CallDurably: one request through a Service whose changes a DataDirectory
// makes durable, as the server does before it answers.
#pragma once

#include <future>

#include "core/status.h"
#include "durable/data_directory.h"
#include "service/service.h"

namespace gradientd::testing {

// Handles `request` on `service` and, for a change with a data directory
// (`data` may be null: in memory), waits until the change may be
// acknowledged; the log's error replaces the response if it fails.
inline v1::Response CallDurably(service::Service& service, durable::DataDirectory* data,
                                const v1::Request& request) {
  v1::Response response;
  const uint64_t token = service.Handle(request, &response);
  if (token > 0 && data != nullptr) {
    std::promise<Status> done;
    data->change_log()->OnDurable(token, [&](const Status& s) { done.set_value(s); });
    const Status s = done.get_future().get();
    if (!s.ok()) {
      response.Clear();
      response.mutable_error()->set_message(s.message());
    }
  }
  return response;
}

}  // namespace gradientd::testing
