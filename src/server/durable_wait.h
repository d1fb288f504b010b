// AsyncWaitDurable: an Asio operation that completes once the change log
// reports a token durable (group commit), or at once when cancelled.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "core/status.h"
#include "service/change_log.h"
#include "util/mutex.h"

namespace gradientd::server {

// One AsyncWaitDurable: the handler, called once on its executor, by the
// log's answer or by cancellation, whichever comes first.
template <typename Handler>
class DurableWait : public std::enable_shared_from_this<DurableWait<Handler>> {
 public:
  explicit DurableWait(Handler h)
      : handler_(std::move(h)),
        work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(handler_))) {}

  // Hands `status` to the handler on its executor, unless already done.
  // From any thread.
  void Post(const Status& status) EXCLUDES(mu_) {
    util::MutexLock lock(mu_);
    if (!work_) return;
    boost::asio::post(work_->get_executor(),
                      [self = this->shared_from_this(), status] { self->Complete(status); });
    work_.reset();
  }

  Handler& handler() { return handler_; }

 private:
  void Complete(const Status& status) {  // on the handler's executor
    boost::asio::get_associated_cancellation_slot(handler_).clear();
    std::move(handler_)(status);
  }

  Handler handler_;
  util::Mutex mu_;
  // Until answered or cancelled: keeps the handler's io_context running.
  // After a cancellation the log's late answer touches nothing else.
  std::optional<boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>>> work_
      GUARDED_BY(mu_);
};

// Completes with the log's verdict once `token` is durable, on the
// awaiting coroutine's executor; or, if cancelled first, at once with
// kUnavailable (then the log's later answer is ignored).
template <typename Token>
auto AsyncWaitDurable(service::ChangeLog& log, uint64_t token, Token&& completion) {
  return boost::asio::async_initiate<Token, void(Status)>(
      [&log, token](auto handler) {
        using Wait = DurableWait<decltype(handler)>;
        auto wait = std::make_shared<Wait>(std::move(handler));
        auto slot = boost::asio::get_associated_cancellation_slot(wait->handler());
        if (slot.is_connected()) {
          slot.assign([weak = std::weak_ptr<Wait>(wait)](boost::asio::cancellation_type) {
            if (auto w = weak.lock()) w->Post(Status::Unavailable("cancelled"));
          });
        }
        log.OnDurable(token, [wait](const Status& status) { wait->Post(status); });
      },
      completion);
}

}  // namespace gradientd::server
