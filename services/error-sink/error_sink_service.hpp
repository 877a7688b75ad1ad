// error_sink_service.hpp — the courier.errors service: stores error report batches and
// answers queries about them, as an ordinary Courier service on the worker host.
//
//   courier::WorkerHost host(options);
//   host.Register<courier::sink::ErrorSinkService>(courier::ConfigSection::Parse(R"(
//     allow_unsealed = true              # reporters and brokers send unsealed batches
//     db = "/var/lib/courier/errors.db"
//   )", "error-sink"));
//
// Requests (MessagePack maps; sealed or unsealed):
//   {"reports": [...], "dropped": n}     a report batch (PROTOCOL.md §10.1) → {"stored": n, "duplicate": bool}
//   {"op": "list", "service"?, "since_ms"?, "code"? (number or name), "fingerprint"?,
//    "before_id"?, "limit"? (1..1000, default 50)}  → {"reports": [row...], "stats": {...}}
//   {"op": "show", "id": n}              → row with "envelope", "payload" (bin) and "job"
//   {"op": "groups", ...list filters}    → {"groups": [...]}   (by fingerprint, with counts)
//   {"op": "replay", "id": n, "wait_ms"?} → {"outcome": ..., ...} (below)
//   {"op": "replayed", "id": n, "outcome": str}  records a replay done elsewhere (the CLI)
//   {"op": "stats"}                      → {"stored", "received", "dropped", ..., "rejected_batches",
//                                           "clamped_reports"}
// Every batch is checked before it is stored (detail::CheckErrorBatch, report_codec.hpp):
// an implausible one (a `dropped` of 2^63, a stage or reporter that is not a name, a pid
// out of range...) is refused with ERROR invalid_payload and counted in
// `rejected_batches`; fields that are only out of shape (a failure time outside
// [now - 30 days, now + 10 min], invalid UTF-8 or control characters) are repaired and the
// reports counted in `clamped_reports`. Both are logged at most once a second. The two
// counters live in memory (a restart zeroes them).
// An unknown op, a missing id or a bad filter is answered ERROR invalid_payload.
//
// Replay resubmits a stored dead letter exactly as it was (its envelope with the attempt
// reset to 1, and its still-sealed payload: no key needed, same job id) to its service
// through the broker(s) in `brokers`, and waits up to `replay_wait` (or wait_ms) for the
// answer. Outcomes: "replied" (reply_envelope and reply_payload, still sealed, are
// returned for the caller to open), "failed" (code, message), "accepted" (a mode-send job),
// "no_answer" (nothing within the wait; the job may still run), "expired" (its deadline,
// which is sealed into the job, has passed: only a key holder can resubmit it as a fresh
// job — `courier errors replay` does that when it holds the key). Each attempt is recorded.
//
// Settings ([services."courier.errors"] keys besides the host's own, e.g. allow_unsealed):
//   db = PATH             default $XDG_STATE_HOME/courier/errors.db (~/.local/state/...)
//   max_age = "720h"      retention by age (default 30 days)
//   max_reports = 1000000 retention by count
//   synchronous = "full"  or "normal" (faster; survives process crashes, not power loss)
//   brokers = [...]       where replays are submitted (default tcp://127.0.0.1:5555)
//   replay_wait = "10s"   longest wait for a replayed job's answer (1 ms .. 10 min)
//
// Thread-safety: Handle runs concurrently on the host's pool; the store serialises.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "courier/config.hpp"
#include "courier/curve.hpp"
#include "courier/plugin.hpp"
#include "courier/value.hpp"
#include "error_store.hpp"
#include "reporting/report_codec.hpp"
#include "reporting/stage_recorder.hpp"

namespace courier::sink {

class ErrorSinkService {
 public:
  static constexpr std::string_view kName = "courier.errors";

  // Throws: Error(kConfig) for a bad setting, Error(kIo) if the database cannot be opened.
  explicit ErrorSinkService(const ConfigSection& config);

  Value Handle(const Value& request, const JobContext& job);

  ErrorStore& store() { return *store_; }
  // Returns: the cumulative "error_handle" timings (storing and grouping each batch), for
  // WorkerHost::AddStageSource. Thread-safe.
  std::vector<StageTotals> StageTimings() const { return timings_.Totals(); }

 private:
  Value Store(const Value& request, const JobContext& job);
  Value List(const Value& request) const;
  Value Show(const Value& request) const;
  Value Groups(const Value& request) const;
  Value Replay(const Value& request);
  Value Replayed(const Value& request);
  Value Stats() const;
  Value StatsValue() const;

  std::unique_ptr<ErrorStore> store_;
  std::vector<std::string> brokers_;
  std::chrono::milliseconds replay_wait_{10000};
  CurveOptions curve_;  // for replays: CURVE to the brokers (off unless curve_server_key is set)
  std::atomic<std::uint64_t> rejected_batches_{0};
  std::atomic<std::uint64_t> clamped_reports_{0};
  detail::ReportLogGate log_gate_;
  // Recorded where the store already serialises the batches, never on a client's job path.
  detail::StageRecorder timings_;
};

// Returns: the row as the service answers it (also what `courier errors list --json` prints).
Value StoredReportToValue(const StoredReport& row, bool with_job);

}  // namespace courier::sink
