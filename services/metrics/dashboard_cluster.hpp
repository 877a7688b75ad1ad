// dashboard_cluster.hpp — what the dashboard learns from the brokers and the error sink,
// through the client SDK from inside the collector (no protocol of its own).
//
//   ClusterView cluster(options, table);
//   cluster.Poll();                                   // once a second (Dashboard's sampler)
//   Value overview = cluster.Overview();              // cached: never waits on a broker
//   Value rows = cluster.Errors(filter);              // asks courier.errors, sealed
//
// Poll asks every broker that is not down for "stats", "services" and "workers" and keeps
// the answers with ten seconds of their counters, so jobs/s and error rates are differences
// of the brokers' own totals (replied + failed per service, jobs_answered per broker) over
// the last ten seconds. Latency percentiles come from the collector's table: the brokers'
// `dispatch` stage (dispatch to answer) over the last minute, else the workers' `handle`.
// Error-sink and job questions go out at the time they are asked, each bounded by
// `call_deadline`. Payloads and replies never leave here unless `reveal` is asked for and
// the collector's keyring holds the key.
// Thread-safety: every member is safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "courier/client.hpp"
#include "courier/keyring.hpp"
#include "courier/value.hpp"
#include "stage_table.hpp"

namespace courier::metrics {

// One reading of a counter pair (all jobs answered, failed ones) at `t_ms`.
struct CounterSample {
  std::int64_t t_ms = 0;
  std::uint64_t total = 0;
  std::uint64_t failed = 0;
};
struct Rates {
  double per_second = 0;   // Δtotal / Δt
  double error_ratio = 0;  // Δfailed / Δtotal (0 when nothing was answered)
};
// Returns: the rates between the oldest and the newest of `samples` (zero with fewer than
// two, or when a counter went backwards: a restarted broker).
Rates RateOf(const std::deque<CounterSample>& samples);

struct ErrorFilter {
  std::string service;
  std::string code;            // a name or number; "" = any
  std::uint64_t since_ms = 0;  // failure time at or after (Unix ms); 0 = any
  std::string fingerprint;
  std::size_t limit = 50;
};

class ClusterView {
 public:
  // `client` says where the brokers are and which keyring seals questions to the error sink
  // (its report flag is forced off). With CURVE but no key file of its own, the view asks
  // nobody: every question fails with Error(kConfig) saying so. `table` must outlive the view.
  ClusterView(ClientOptions client, const StageTable& table,
              std::chrono::milliseconds call_deadline = std::chrono::seconds(10));
  ~ClusterView();
  ClusterView(const ClusterView&) = delete;
  ClusterView& operator=(const ClusterView&) = delete;

  // Asks the brokers for their state and keeps it. Never throws (a failure is kept as the
  // overview's "problem").
  void Poll();

  // Returns: {"updated_ms", "problem"?, "collector": {...}, "brokers": [...], "services": [...]}
  // as described in services/metrics/README.md ("Dashboard").
  Value Overview() const;
  // Returns: the workers of `service` as the brokers last said (WorkerInfo as maps).
  Value Workers(const std::string& service) const;

  // Error sink questions. Throws: Error(kNoSuchService) if no sink is registered; the sink's
  // or the transport's Error otherwise.
  Value Errors(const ErrorFilter& filter, bool groups);
  // Returns: report `id` without its envelope and payload bytes; with `reveal`, the payload
  // opened ("payload") or why it cannot be ("payload_problem").
  Value Error(std::int64_t id, bool reveal);
  // Replays dead letter `id` as `courier errors replay` does: the same job through the sink
  // while its deadline allows, else a fresh job with the original payload (needs its key).
  // Returns: {"id", "outcome", "how", "job_id", "service", "message"?}; never a reply value.
  Value Replay(std::int64_t id, std::chrono::milliseconds wait);
  // Replays every dead letter among the newest `limit` reports with `fingerprint`.
  // Returns: {"replayed": n, "skipped": n, "results": [Replay results or {"id", "error"}]}.
  Value ReplayGroup(const std::string& fingerprint, std::size_t limit);

  // Stored jobs. Throws: the client's Error (kNotFound for an unknown id).
  Value Job(const std::string& id_hex, bool reveal);
  Value Jobs(const std::string& service, const std::string& state, std::size_t limit);

 private:
  Value Ask(const Value& request, std::chrono::milliseconds deadline);
  // Throws: Error(kConfig) when the view asks nobody.
  Client& client();
  void RequireSink();
  std::optional<Value> OpenPayload(const std::string& envelope, const std::string& payload, std::string& why) const;

  const StageTable& table_;
  const std::chrono::milliseconds call_deadline_;
  std::shared_ptr<const Keyring> keyring_;  // null if none could be loaded
  std::unique_ptr<Client> client_;  // null: asks nobody (no_client_ says why)
  std::string no_client_;

  mutable std::mutex mutex_;
  std::int64_t updated_ms_ = 0;
  std::string problem_;
  std::map<std::string, Value> broker_stats_;            // endpoint → its last "stats"
  std::map<std::string, std::deque<CounterSample>> broker_samples_;
  std::vector<ServiceInfo> services_;
  std::map<std::string, std::deque<CounterSample>> service_samples_;
  std::vector<WorkerInfo> workers_;
};

}  // namespace courier::metrics
