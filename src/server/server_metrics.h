// ServerMetrics: what the Asio shell counts, registered in a Node's
// metrics::Registry: responses queued, TLS handshakes that failed,
// connections refused over --max-connections, and the connections
// handshaking (the other states are read from the Server at scrape time).
#pragma once

#include "metrics/metrics.h"

namespace gradientd::server {

struct ServerMetrics {
  explicit ServerMetrics(metrics::Registry& registry)
      : tls_handshake_failures(registry.AddCounter(
            "gradientd_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out (the connection was closed).")) {
    registry.AddGaugeCallback("gradientd_queued_response_bytes",
                              "Response bytes queued for clients, not yet written.",
                              [this] { return static_cast<double>(queued_bytes.Value()); });
  }

  metrics::Counter& tls_handshake_failures;
  metrics::ShardedGauge queued_bytes;
  metrics::ShardedGauge handshaking;                     // TLS handshakes under way
  metrics::Counter* max_connections_refusals = nullptr;  // set by whoever owns the family
  metrics::CounterFamily* auth_failures = nullptr;       // by auth::AuthFailure; for Sessions
};

}  // namespace gradientd::server
