// job_store.hpp — the broker's embedded store of accepted jobs and kept results: SQLite in
// WAL mode under the broker's data directory (PERFORMANCE.md, "Job store", says why
// SQLite). The broker loop owns it; the routing core never touches it (store_ops.hpp).
//
// Contract:
// - Commit writes a batch of StoreOps in one transaction: with synchronous=FULL when the
//   batch holds an fsync job or result (the WAL is flushed before Commit returns), NORMAL
//   otherwise (written to the OS; flushed at checkpoints).
// - A batch with new jobs is refused when the database already uses store_max_bytes (a
//   quota: SQLite's hard limit sits a headroom above it, so removals and results always
//   fit and a full store empties itself as jobs finish). A store that cannot take a batch
//   (over the quota, a full disk, any I/O error) rolls it back; the batch's new jobs are
//   refused (the caller answers their clients) and every other op is kept and tried again
//   before the next batch, so removals and results are never lost while the broker runs.
// - One broker per data directory: the constructor takes an exclusive lock (flock) and
//   throws Error(kConfig) if another process holds it.
// Thread-safety: none; one thread (the broker loop) owns it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "store_ops.hpp"
#include "wire/job_records.hpp"

namespace courier::broker {

struct JobStoreOptions {
  std::filesystem::path dir;       // created 0700 if missing
  std::uint64_t max_bytes = 8ULL << 30;
};

class JobStore {
 public:
  // Opens (creating if needed) `options.dir`/jobs.db. Throws: Error(kIo) if it cannot,
  // Error(kConfig) if another broker holds the directory.
  explicit JobStore(JobStoreOptions options);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Calls `each` with every stored job, in accept order, and forgets the results of
  // durability = "memory" jobs (they do not outlive the broker). Returns: the highest seq
  // stored (jobs and results), so new jobs sort after them.
  std::uint64_t Load(const std::function<void(StoredJob&&)>& each);
  // Writes `ops` (and ops kept from failed batches before them). Never throws.
  CommitResult Commit(std::span<const StoreOp> ops);
  // Returns: the kept result under `id` that has not expired at `now_ms`, with its reply.
  std::optional<wire::JobRecord> FindResult(const JobId& id, std::uint64_t now_ms);
  // Returns: a page of stored jobs and unexpired results, in accept order.
  wire::JobsPage List(const wire::JobsQuery& query, std::uint64_t now_ms);
  // Deletes at most `limit` results that expired before `now_ms`. Returns: how many.
  std::size_t PurgeExpired(std::uint64_t now_ms, std::size_t limit);
  // Ops kept from failed batches, waiting for the next Commit.
  std::size_t pending_retries() const { return retry_.size(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Db;
  void Apply(const StoreOp& op);
  bool TryCommit(std::span<const StoreOp> first, std::span<const StoreOp> second, bool skip_new_jobs,
                 CommitResult& result);
  // Returns: bytes of the database's pages in use (the WAL not counted).
  std::uint64_t UsedBytes();

  std::filesystem::path path_;
  std::unique_ptr<Db> db_;
  std::vector<StoreOp> retry_;
  int lock_fd_ = -1;
  bool synchronous_full_ = true;
  std::uint64_t page_size_ = 4096;
  std::uint64_t max_bytes_ = 0;
};

// Returns: the default data directory for a broker whose first endpoint is `endpoint`:
// $STATE_DIRECTORY/broker-<endpoint as a file name> under systemd's StateDirectory=, else
// $XDG_STATE_HOME/courier/broker-<endpoint>, else ~/.local/state/courier/broker-<endpoint>.
std::filesystem::path DefaultDataDir(std::string_view endpoint);

}  // namespace courier::broker
