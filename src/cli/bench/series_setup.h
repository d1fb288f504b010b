// The requests bench makes outside its measured phases: the query series'
// first batch, and the series-count phase's many one-point series.
#pragma once

#include <cstdint>
#include <string>

#include "cli/bench/batch_template.h"
#include "cli/bench/raw_connection.h"
#include "client/client.h"
#include "core/status.h"
#include "protocol/endpoint.h"

namespace gradientd::cli::bench {

// Makes sure `series` has points, so that gradient queries are answered: one
// batch from `producer_id` when a query says it has none.
Status EnsureSeries(RawConnection* connection, const std::string& series,
                    const BatchTemplate& batch, const std::string& producer_id);

// Creates `count` series "PREFIX-000000000", ... of one point each on a
// connection of their own, pipelined; the time it took into *seconds.
Status CreateSeries(const protocol::Endpoint& endpoint, const client::ConnectOptions& options,
                    const std::string& prefix, uint64_t count, double* seconds);

}  // namespace gradientd::cli::bench
