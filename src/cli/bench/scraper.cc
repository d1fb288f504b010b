#include "cli/bench/scraper.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <utility>

#include "cli/bench/common.h"

namespace gradientd::cli::bench {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

Status Failed(const std::string& what, const error_code& ec) {
  return Status::Unavailable("scrape: " + what + ": " + ec.message());
}

// Beast's asynchronous operations, each run to its end on `io`, so that the
// stream's expiry bounds them (the synchronous ones have no timeout).
class OneScrape {
 public:
  OneScrape(const ScrapePlan& plan, std::chrono::nanoseconds timeout) : plan_(plan) {
    stream_.expires_after(timeout);
  }

  Status Run(uint64_t* body_bytes) {
    if (Status s = Connect(); !s.ok()) return s;
    http::request<http::empty_body> request(http::verb::get, "/metrics", 11);
    request.set(http::field::host, plan_.endpoint.host);
    if (!plan_.token.empty()) request.set(http::field::authorization, "Bearer " + plan_.token);
    error_code ec;
    http::async_write(stream_, request, [&ec](error_code e, std::size_t) { ec = e; });
    RunToEnd();
    if (ec) return Failed("sending the request", ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxScrapeBytes);
    boost::beast::flat_buffer buffer;
    http::async_read(stream_, buffer, parser, [&ec](error_code e, std::size_t) { ec = e; });
    RunToEnd();
    if (ec) return Failed("reading the response", ec);
    const auto& response = parser.get();
    if (response.result() != http::status::ok) {
      return Status::Unavailable("scrape: HTTP " + std::to_string(response.result_int()) + " " +
                                 std::string(response.reason()));
    }
    *body_bytes = response.body().size();
    error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return Status::Ok();
  }

 private:
  Status Connect() {
    error_code ec;
    asio::ip::tcp::resolver resolver(io_);
    const auto endpoints =
        resolver.resolve(plan_.endpoint.host, std::to_string(plan_.endpoint.port), ec);
    if (ec) return Failed("resolving " + plan_.endpoint.host, ec);
    stream_.async_connect(endpoints, [&ec](error_code e, const auto&) { ec = e; });
    RunToEnd();
    if (ec) {
      return Failed(
          "cannot connect to " + plan_.endpoint.host + ":" + std::to_string(plan_.endpoint.port),
          ec);
    }
    return Status::Ok();
  }

  void RunToEnd() {
    io_.restart();
    io_.run();
  }

  const ScrapePlan& plan_;
  asio::io_context io_;
  boost::beast::tcp_stream stream_{io_};
};

}  // namespace

Status ScrapeOnce(const ScrapePlan& plan, std::chrono::nanoseconds timeout, uint64_t* body_bytes) {
  return OneScrape(plan, timeout).Run(body_bytes);
}

void Scraper::Start() {
  thread_ = std::thread([this] { Loop(); });
}

const ScrapeResult& Scraper::Stop() {
  if (thread_.joinable()) {
    {
      util::MutexLock lock(mu_);
      stopping_ = true;
    }
    wake_.SignalAll();
    thread_.join();
    std::sort(result_.durations.ns.begin(), result_.durations.ns.end());
  }
  return result_;
}

void Scraper::Loop() {
  Clock::time_point due = Clock::now();
  while (true) {
    {
      util::MutexLock lock(mu_);
      while (!stopping_ && Clock::now() < due) wake_.WaitUntil(mu_, due);
      if (stopping_) return;
    }
    ScrapeAndCount();
    due = std::max(due + plan_.interval, Clock::now());
  }
}

void Scraper::ScrapeAndCount() {
  uint64_t bytes = 0;
  const Clock::time_point t0 = Clock::now();
  const Status s = ScrapeOnce(plan_, kScrapeTimeout, &bytes);
  const Clock::time_point t1 = Clock::now();
  ++result_.scrapes;
  if (!s.ok()) {
    ++result_.failed;
    if (result_.first_error.empty()) result_.first_error = s.message();
    return;
  }
  result_.durations.ns.push_back(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  result_.bytes += bytes;
}

}  // namespace gradientd::cli::bench
