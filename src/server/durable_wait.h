// AsyncWaitDurable and AsyncWaitDecided: Asio operations that complete once
// the change log reports a token durable (group commit), or gives a
// change's response (a cluster), or at once when cancelled.
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
#include "gradientd/v1/gradientd.pb.h"
#include "service/change_log.h"
#include "util/mutex.h"

namespace gradientd::server {

// One wait: the handler, called once on its executor with the log's answer
// or the cancellation's, whichever comes first.
template <typename Handler, typename Value>
class LogWait : public std::enable_shared_from_this<LogWait<Handler, Value>> {
 public:
  explicit LogWait(Handler h)
      : handler_(std::move(h)),
        work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(handler_))) {}

  // Hands `value` to the handler on its executor, unless already done.
  // From any thread.
  void Post(Value value) EXCLUDES(mu_) {
    util::MutexLock lock(mu_);
    if (!work_) return;
    boost::asio::post(work_->get_executor(),
                      [self = this->shared_from_this(), value = std::move(value)]() mutable {
                        self->Complete(std::move(value));
                      });
    work_.reset();
  }

  Handler& handler() { return handler_; }

 private:
  void Complete(Value value) {  // on the handler's executor
    boost::asio::get_associated_cancellation_slot(handler_).clear();
    std::move(handler_)(std::move(value));
  }

  Handler handler_;
  util::Mutex mu_;
  // Until answered or cancelled: keeps the handler's io_context running.
  // After a cancellation the log's late answer touches nothing else.
  std::optional<boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>>> work_
      GUARDED_BY(mu_);
};

// Starts a LogWait: `cancelled` is what a cancellation completes it with;
// subscribe(post) asks the log to call post(value) once.
template <typename Value, typename Token, typename Subscribe>
auto AsyncLogWait(Value cancelled, Subscribe subscribe, Token&& completion) {
  return boost::asio::async_initiate<Token, void(Value)>(
      [cancelled = std::move(cancelled), subscribe = std::move(subscribe)](auto handler) {
        using Wait = LogWait<decltype(handler), Value>;
        auto wait = std::make_shared<Wait>(std::move(handler));
        auto slot = boost::asio::get_associated_cancellation_slot(wait->handler());
        if (slot.is_connected()) {
          slot.assign(
              [weak = std::weak_ptr<Wait>(wait), cancelled](boost::asio::cancellation_type) {
                if (auto w = weak.lock()) w->Post(cancelled);
              });
        }
        subscribe([wait](Value value) { wait->Post(std::move(value)); });
      },
      completion);
}

// Completes with the log's verdict once `token` is durable, on the
// awaiting coroutine's executor; or, if cancelled first, at once with
// kUnavailable (then the log's later answer is ignored).
template <typename Token>
auto AsyncWaitDurable(service::ChangeLog& log, uint64_t token, Token&& completion) {
  return AsyncLogWait<Status>(
      Status::Unavailable("cancelled"),
      [&log, token](auto post) {
        log.OnDurable(token, [post = std::move(post)](const Status& s) { post(s); });
      },
      std::forward<Token>(completion));
}

// Completes with the response the log decided for `token`'s change; or, if
// cancelled first, at once with an empty response.
template <typename Token>
auto AsyncWaitDecided(service::ChangeLog& log, uint64_t token, Token&& completion) {
  return AsyncLogWait<v1::Response>(
      v1::Response(),
      [&log, token](auto post) {
        log.OnDecided(token, [post = std::move(post)](v1::Response r) { post(std::move(r)); });
      },
      std::forward<Token>(completion));
}

}  // namespace gradientd::server
