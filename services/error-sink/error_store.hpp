// error_store.hpp — the error sink's SQLite store: every error report, grouped by
// fingerprint, kept across restarts, pruned by age and count.
//
//   ErrorStore store(ErrorStore::DefaultPath(), {});
//   store.Insert(batch_job_id, batch, NowUnixMs());
//   for (const StoredReport& row : store.List({.service = "resize", .limit = 20})) ...
//
// The database is one file in WAL mode (created 0600, its directory 0700), synchronous
// FULL by default: a committed batch survives a crash of the process or the machine.
// Insert is idempotent per batch job id (a reporter that resends a batch after a lost
// ACCEPT does not store it twice; ids are remembered for 24 h).
//
// Fingerprint: service, stage, code and the message with digit runs and long hex tokens
// replaced by '#', hashed (64-bit FNV-1a, 16 hex digits). "job 4f3a…: timeout after 30s"
// and "job 9c1d…: timeout after 31s" share one. Each fingerprint counts every report that
// had it, including reports already pruned.
//
// Retention: Prune(now) deletes reports received more than max_age ago and the oldest
// beyond max_reports; Insert prunes by itself at most once per prune_interval, and also
// whenever it added about 1% of max_reports since the last prune (so the count
// overshoots by at most that much).
//
// Thread-safety: every member is safe from any thread (one connection behind a mutex).
// Throws: Error(kIo) for database failures (naming the file), Error(kConfig) for bad limits.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/reporting.hpp"
#include "reporting/report_codec.hpp"

struct sqlite3;

namespace courier::sink {

struct StoreLimits {
  std::chrono::milliseconds max_age{std::chrono::hours(24 * 30)};  // default 30 days
  std::uint64_t max_reports = 1'000'000;                           // default one million
  std::chrono::milliseconds prune_interval{std::chrono::minutes(1)};
  bool synchronous_full = true;  // false: synchronous = NORMAL (survives process crashes only)
};

struct StoredReport {
  std::int64_t id = 0;
  std::uint64_t received_ms = 0;
  ErrorReport report;            // envelope/payload only filled by Find
  bool has_job = false;          // a dead letter: envelope and payload are stored
  std::string fingerprint;
  std::uint64_t occurrences = 0;  // reports seen with this fingerprint
  std::uint32_t replays = 0;
  std::string last_replay;       // outcome of the last replay, "" if never replayed
};

struct ReportFilter {
  std::optional<std::string> service;
  std::optional<std::uint64_t> since_ms;   // failure time (time_ms) at or after
  std::optional<ErrorCode> code;
  std::optional<std::string> fingerprint;
  std::optional<std::int64_t> before_id;   // paging: only ids below
  std::size_t limit = 50;                  // at most kMaxListLimit
};
inline constexpr std::size_t kMaxListLimit = 1000;

struct FingerprintGroup {
  std::string fingerprint;
  std::string service;
  std::string stage;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // the normalised message
  std::uint64_t count = 0;
  std::uint64_t first_ms = 0;  // failure time of the first and last report
  std::uint64_t last_ms = 0;
  std::int64_t last_id = 0;    // the newest report with it
};

struct StoreStats {
  std::uint64_t stored = 0;             // reports held now
  std::uint64_t received = 0;           // reports stored since the database was created
  std::uint64_t dropped = 0;            // reports reporters said they lost (sum of "dropped")
  std::uint64_t duplicate_batches = 0;  // resent batches recognised and skipped
  std::uint64_t pruned = 0;             // reports deleted by retention
  std::uint64_t fingerprints = 0;
};

// Returns: the message with digit runs and hex tokens (8+ hex digits) replaced by '#' and
// whitespace runs collapsed, cut to 1 KiB.
std::string NormaliseMessage(std::string_view message);
// Returns: the 16-hex-digit fingerprint of a report.
std::string Fingerprint(const ErrorReport& report);

class ErrorStore {
 public:
  // Returns: $XDG_STATE_HOME/courier/errors.db, else ~/.local/state/courier/errors.db.
  static std::filesystem::path DefaultPath();

  // Opens (creating if needed) the database at `path` and prunes it once.
  ErrorStore(const std::filesystem::path& path, StoreLimits limits);
  ~ErrorStore();
  ErrorStore(const ErrorStore&) = delete;
  ErrorStore& operator=(const ErrorStore&) = delete;

  struct InsertResult {
    bool duplicate = false;  // the batch was stored before; nothing inserted
    std::vector<std::int64_t> ids;
  };
  // Stores every report of `batch` (and its drop count) in one transaction. A zero
  // `batch_id` disables the duplicate check.
  InsertResult Insert(const JobId& batch_id, const detail::ErrorBatch& batch, std::uint64_t received_ms);

  // Returns: matching reports, newest first, without envelope and payload bytes.
  std::vector<StoredReport> List(const ReportFilter& filter) const;
  // Returns: report `id` with everything stored, or std::nullopt.
  std::optional<StoredReport> Find(std::int64_t id) const;
  // Returns: fingerprints of reports matching `filter` (service, since_ms, code), most
  // recently seen first.
  std::vector<FingerprintGroup> Groups(const ReportFilter& filter) const;
  // Records a replay attempt of report `id`. Returns: whether the report exists.
  bool RecordReplay(std::int64_t id, std::string_view outcome, std::uint64_t now_ms);
  // Applies retention now. Returns: the reports deleted.
  std::size_t Prune(std::uint64_t now_ms);

  StoreStats Stats() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::size_t PruneLocked(std::uint64_t now_ms);
  void Exec(const char* sql) const;
  std::uint64_t Meta(const char* key) const;
  void AddMeta(const char* key, std::uint64_t delta) const;

  const std::filesystem::path path_;
  const StoreLimits limits_;
  mutable std::mutex mutex_;
  sqlite3* db_ = nullptr;
  std::chrono::steady_clock::time_point last_prune_{};
  std::uint64_t inserted_since_prune_ = 0;
};

}  // namespace courier::sink
