#include "job_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "courier/codec.hpp"
#include "sqlite/statement.hpp"

namespace courier::broker {
namespace {

using sqlite::Statement;

constexpr int kSchemaVersion = 1;
// Ops kept from failed batches: past this, the oldest are dropped (logged). A dropped
// removal means a finished job may run again after a restart (at-least-once).
constexpr std::size_t kMaxRetryOps = 1'000'000;

// A job's key is its seq (the rowid: no second b-tree to keep per insert and delete); its
// dispatch mark is a small row of its own, so marking a job does not rewrite its payload.
// States are stored as wire::JobState numbers; queued/running come from `dispatches`.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq          INTEGER PRIMARY KEY,
  id           BLOB NOT NULL,
  service      TEXT NOT NULL,
  origin       INTEGER NOT NULL,
  mode         INTEGER NOT NULL,
  durability   INTEGER NOT NULL,
  envelope     BLOB NOT NULL,
  payload      BLOB NOT NULL,
  extra_body   BLOB,
  sender       TEXT NOT NULL,
  attempt      INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  deadline_ms  INTEGER NOT NULL,
  accepted_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dispatches (
  seq          INTEGER PRIMARY KEY,
  attempt      INTEGER NOT NULL,
  worker       TEXT NOT NULL,
  since_ms     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
  id           BLOB PRIMARY KEY,
  seq          INTEGER NOT NULL,
  service      TEXT NOT NULL,
  state        INTEGER NOT NULL,
  attempt      INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  code         INTEGER NOT NULL,
  message      TEXT NOT NULL,
  reply        BLOB,
  finished_ms  INTEGER NOT NULL,
  expires_ms   INTEGER NOT NULL,
  durable      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS results_expires ON results(expires_ms);
CREATE INDEX IF NOT EXISTS results_seq ON results(seq);
)sql";

std::int64_t Signed(std::uint64_t value) {
  return value > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(value);
}

std::string EncodeFrames(const std::vector<std::string>& frames) {
  std::string out;
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter> packer(stream);
  packer.pack_array(static_cast<std::uint32_t>(frames.size()));
  for (const auto& frame : frames) {
    packer.pack_bin(static_cast<std::uint32_t>(frame.size()));
    packer.pack_bin_body(frame.data(), static_cast<std::uint32_t>(frame.size()));
  }
  return out;
}

std::vector<std::string> DecodeFrames(std::string_view bytes) {
  std::vector<std::string> frames;
  if (bytes.empty()) return frames;
  for (const auto& frame : Decode<std::vector<std::vector<char>>>(bytes, DecodeLimits{.max_bytes = 1ULL << 30})) {
    frames.emplace_back(frame.begin(), frame.end());
  }
  return frames;
}

JobId ColumnJobId(const Statement& row, int column) {
  return JobId::FromBytes(row.ColumnBlob(column)).value_or(JobId{});
}

// "tcp://127.0.0.1:5555" → "broker-tcp-127.0.0.1-5555": one folder per endpoint.
std::string BrokerDirName(std::string_view endpoint) {
  std::string name = "broker-";
  for (const char c : endpoint) {
    const bool plain = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_';
    if (plain) {
      name += c;
    } else if (name.back() != '-') {
      name += '-';
    }
  }
  return name;
}

}  // namespace

std::string_view ToString(Durability durability) {
  switch (durability) {
    case Durability::kMemory:
      return "memory";
    case Durability::kWrite:
      return "write";
    case Durability::kFsync:
      return "fsync";
  }
  return "fsync";
}

struct JobStore::Db {
  sqlite3* handle = nullptr;
  std::filesystem::path path;
  std::unique_ptr<Statement> add_job;
  std::unique_ptr<Statement> dispatched;
  std::unique_ptr<Statement> remove_job;
  std::unique_ptr<Statement> remove_dispatch;
  std::unique_ptr<Statement> add_result;
  std::unique_ptr<Statement> remove_result;
  std::unique_ptr<Statement> used_pages;

  ~Db() {
    used_pages.reset();
    // Statements first: a connection with live statements does not close.
    add_job.reset();
    dispatched.reset();
    remove_job.reset();
    remove_dispatch.reset();
    add_result.reset();
    remove_result.reset();
    if (handle != nullptr) sqlite3_close(handle);
  }
  void Exec(const std::string& sql) const {
    char* message = nullptr;
    if (sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message != nullptr ? message : sqlite3_errmsg(handle);
      sqlite3_free(message);
      throw Error(ErrorCode::kIo, path.string() + ": " + text);
    }
  }
};

std::filesystem::path DefaultDataDir(std::string_view endpoint) {
  std::filesystem::path base;
  // systemd's StateDirectory= (the broker unit's) first, then the XDG base directories.
  if (const char* systemd = std::getenv("STATE_DIRECTORY"); systemd != nullptr && *systemd == '/') {
    const std::string_view first = std::string_view(systemd).substr(0, std::string_view(systemd).find(':'));
    return std::filesystem::path(first) / BrokerDirName(endpoint);
  }
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state == '/') {
    base = state;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    base = std::filesystem::path(home) / ".local" / "state";
  } else {
    base = "/var/lib";
  }
  return base / "courier" / BrokerDirName(endpoint);
}

JobStore::JobStore(JobStoreOptions options) : path_(options.dir / "jobs.db"), db_(std::make_unique<Db>()) {
  std::error_code error;
  std::filesystem::create_directories(options.dir, error);
  if (error) throw Error(ErrorCode::kIo, options.dir.string() + ": cannot create the data directory: " + error.message());
  ::chmod(options.dir.c_str(), 0700);
  const std::filesystem::path lock = options.dir / "lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw Error(ErrorCode::kIo, lock.string() + ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    throw Error(ErrorCode::kConfig, "data_dir " + options.dir.string() +
                                        " is in use by another courier-broker (each broker needs its own)");
  }
  db_->path = path_;
  try {
    if (sqlite3_open_v2(path_.c_str(), &db_->handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      throw Error(ErrorCode::kIo, path_.string() + ": cannot open: " +
                                      (db_->handle != nullptr ? sqlite3_errmsg(db_->handle) : "out of memory"));
    }
    ::chmod(path_.c_str(), 0600);
    {
      Statement wal(db_->handle, "PRAGMA journal_mode=WAL", path_);
      if (!wal.Step() || wal.ColumnText(0) != "wal") throw Error(ErrorCode::kIo, path_.string() + ": no WAL mode");
    }
    db_->Exec("PRAGMA synchronous=FULL");
    int version = 0;
    {
      Statement user_version(db_->handle, "PRAGMA user_version", path_);
      if (user_version.Step()) version = static_cast<int>(user_version.ColumnInt(0));
    }
    if (version > kSchemaVersion) {
      throw Error(ErrorCode::kConfig, path_.string() + ": written by a newer broker (schema " + std::to_string(version) + ")");
    }
    db_->Exec("BEGIN IMMEDIATE");
    db_->Exec(kSchema);
    db_->Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
    db_->Exec("COMMIT");
    // store_max_bytes: SQLite refuses to grow the file past max_page_count (SQLITE_FULL).
    std::int64_t page_size = 4096;
    {
      Statement size(db_->handle, "PRAGMA page_size", path_);
      if (size.Step()) page_size = std::max<std::int64_t>(size.ColumnInt(0), 512);
    }
    // store_max_bytes is a quota on new jobs (Commit checks it); SQLite's own limit sits
    // above it, so that removals, dispatch marks and results, which a full b-tree may
    // still need a page for, always fit and a full store can empty itself.
    page_size_ = static_cast<std::uint64_t>(page_size);
    max_bytes_ = options.max_bytes;
    const std::uint64_t headroom = std::max<std::uint64_t>(options.max_bytes / 4, 4ULL << 20);
    db_->Exec("PRAGMA max_page_count=" + std::to_string((options.max_bytes + headroom) / page_size_));
    // The WAL is not counted in the pages: keep it from staying at its largest batch.
    db_->Exec("PRAGMA journal_size_limit=" + std::to_string(64LL << 20));
    db_->used_pages = std::make_unique<Statement>(
        db_->handle, "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count)",
        path_);
    db_->add_job = std::make_unique<Statement>(
        db_->handle,
        "INSERT OR REPLACE INTO jobs(id, seq, service, origin, mode, durability, envelope, payload, extra_body, sender, "
        "attempt, max_attempts, deadline_ms, accepted_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        path_);
    db_->dispatched = std::make_unique<Statement>(
        db_->handle, "INSERT OR REPLACE INTO dispatches(seq, attempt, worker, since_ms) VALUES(?,?,?,?)", path_);
    db_->remove_job = std::make_unique<Statement>(db_->handle, "DELETE FROM jobs WHERE seq = ?", path_);
    db_->remove_dispatch = std::make_unique<Statement>(db_->handle, "DELETE FROM dispatches WHERE seq = ?", path_);
    db_->add_result = std::make_unique<Statement>(
        db_->handle,
        "INSERT OR REPLACE INTO results(id, seq, service, state, attempt, max_attempts, code, message, reply, "
        "finished_ms, expires_ms, durable) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
        path_);
    db_->remove_result = std::make_unique<Statement>(db_->handle, "DELETE FROM results WHERE id = ?", path_);
  } catch (...) {
    db_.reset();
    ::close(lock_fd_);
    throw;
  }
}

JobStore::~JobStore() {
  db_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::uint64_t JobStore::Load(const std::function<void(StoredJob&&)>& each) {
  db_->Exec("DELETE FROM results WHERE durable = 0");
  db_->Exec("DELETE FROM dispatches WHERE seq NOT IN (SELECT seq FROM jobs)");
  Statement select(db_->handle,
                   "SELECT j.id, j.seq, j.service, j.origin, j.mode, j.durability, j.envelope, j.payload, j.extra_body, "
                   "j.sender, coalesce(d.attempt, j.attempt), j.max_attempts, j.deadline_ms, j.accepted_ms, "
                   "d.seq IS NOT NULL, coalesce(d.worker, ''), coalesce(d.since_ms, j.accepted_ms) "
                   "FROM jobs j LEFT JOIN dispatches d ON d.seq = j.seq ORDER BY j.seq",
                   path_);
  while (select.Step()) {
    StoredJob job;
    job.id = ColumnJobId(select, 0);
    job.seq = select.ColumnUint(1);
    job.service = select.ColumnText(2);
    job.origin = static_cast<StoredOrigin>(select.ColumnInt(3));
    job.mode = static_cast<ReplyMode>(select.ColumnInt(4));
    job.durability = static_cast<Durability>(select.ColumnInt(5));
    job.envelope = select.ColumnBlob(6);
    job.payload = select.ColumnBlob(7);
    try {
      job.extra_body = DecodeFrames(select.ColumnBlob(8));
    } catch (const Error& error) {
      spdlog::error("{}: job {}: unreadable extra frames ({}); dropped", path_.string(), job.id.Hex(), error.what());
    }
    job.sender = select.ColumnText(9);
    job.attempt = static_cast<std::uint32_t>(select.ColumnUint(10));
    job.max_attempts = static_cast<std::uint32_t>(select.ColumnUint(11));
    job.deadline_ms = select.ColumnUint(12);
    job.accepted_ms = select.ColumnUint(13);
    job.dispatched = select.ColumnInt(14) != 0;
    job.worker = select.ColumnText(15);
    job.since_ms = select.ColumnUint(16);
    each(std::move(job));
  }
  Statement max_seq(db_->handle,
                    "SELECT max(coalesce((SELECT max(seq) FROM jobs), 0), coalesce((SELECT max(seq) FROM results), 0))",
                    path_);
  return max_seq.Step() ? max_seq.ColumnUint(0) : 0;
}

void JobStore::Apply(const StoreOp& op) {
  switch (op.kind) {
    case StoreOp::Kind::kAddJob: {
      const StoredJob& job = op.job;
      Statement& s = *db_->add_job;
      s.Reset();
      s.Blob(1, job.id.View())
          .Int(2, Signed(job.seq))
          .Text(3, job.service)
          .Int(4, static_cast<int>(job.origin))
          .Int(5, static_cast<int>(job.mode))
          .Int(6, static_cast<int>(job.durability))
          .Blob(7, job.envelope)
          .Blob(8, job.payload);
      if (job.extra_body.empty()) {
        s.Null(9);
      } else {
        s.Blob(9, EncodeFrames(job.extra_body));
      }
      s.Text(10, job.sender)
          .Int(11, job.attempt)
          .Int(12, job.max_attempts)
          .Int(13, Signed(job.deadline_ms))
          .Int(14, Signed(job.accepted_ms));
      s.Step();
      return;
    }
    case StoreOp::Kind::kDispatched: {
      Statement& s = *db_->dispatched;
      s.Reset();
      s.Int(1, Signed(op.job.seq)).Int(2, op.job.attempt).Text(3, op.job.worker).Int(4, Signed(op.job.since_ms));
      s.Step();
      return;
    }
    case StoreOp::Kind::kRemoveJob: {
      for (Statement* s : {db_->remove_job.get(), db_->remove_dispatch.get()}) {
        s->Reset();
        s->Int(1, Signed(op.job.seq));
        s->Step();
      }
      return;
    }
    case StoreOp::Kind::kAddResult: {
      const wire::JobRecord& result = op.result;
      Statement& s = *db_->add_result;
      s.Reset();
      s.Blob(1, result.id.View())
          .Int(2, Signed(op.result_seq))
          .Text(3, result.service)
          .Int(4, static_cast<int>(result.state))
          .Int(5, result.attempt)
          .Int(6, result.max_attempts)
          .Int(7, result.state == wire::JobState::kDone ? 0 : static_cast<int>(result.code))
          .Text(8, result.message);
      if (result.reply.empty()) {
        s.Null(9);
      } else {
        s.Blob(9, EncodeFrames(result.reply));
      }
      s.Int(10, Signed(result.since_ms)).Int(11, Signed(result.expires_ms)).Int(12, result.durable ? 1 : 0);
      s.Step();
      return;
    }
    case StoreOp::Kind::kRemoveResult: {
      Statement& s = *db_->remove_result;
      s.Reset();
      s.Blob(1, op.job.id.View());
      s.Step();
      return;
    }
  }
}

bool JobStore::TryCommit(std::span<const StoreOp> first, std::span<const StoreOp> second, bool skip_new_jobs,
                         CommitResult& result) {
  bool full = false;
  auto needs_flush = [](const StoreOp& op) {
    return op.durability == Durability::kFsync &&
           (op.kind == StoreOp::Kind::kAddJob || op.kind == StoreOp::Kind::kAddResult);
  };
  for (const auto* ops : {&first, &second}) {
    for (const StoreOp& op : *ops) full = full || needs_flush(op);
  }
  try {
    if (full != synchronous_full_) {
      db_->Exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      synchronous_full_ = full;
    }
    db_->Exec("BEGIN");
    for (const auto* ops : {&first, &second}) {
      for (const StoreOp& op : *ops) {
        if (skip_new_jobs && op.kind == StoreOp::Kind::kAddJob) continue;
        Apply(op);
      }
    }
    db_->Exec("COMMIT");
    return true;
  } catch (const Error& error) {
    const int code = sqlite3_errcode(db_->handle) & 0xff;
    result.status = code == SQLITE_FULL ? CommitResult::Status::kFull : CommitResult::Status::kFailed;
    result.message = code == SQLITE_FULL ? std::string("the job store is full (") + error.what() + ")"
                                         : std::string("the job store failed: ") + error.what();
    sqlite3_exec(db_->handle, "ROLLBACK", nullptr, nullptr, nullptr);
    return false;
  }
}

std::uint64_t JobStore::UsedBytes() {
  Statement& used = *db_->used_pages;
  used.Reset();
  const std::uint64_t pages = used.Step() ? used.ColumnUint(0) : 0;
  used.Reset();
  return pages * page_size_;
}

CommitResult JobStore::Commit(std::span<const StoreOp> ops) {
  CommitResult result;
  if (ops.empty() && retry_.empty()) return result;
  const bool adds = std::any_of(ops.begin(), ops.end(), [](const StoreOp& op) { return op.kind == StoreOp::Kind::kAddJob; });
  bool over_quota = false;
  if (adds) {
    try {
      over_quota = UsedBytes() >= max_bytes_;
    } catch (const Error& error) {
      result.status = CommitResult::Status::kFailed;
      result.message = std::string("the job store failed: ") + error.what();
      return result;
    }
  }
  if (over_quota) {
    result.status = CommitResult::Status::kFull;
    result.message = "the job store is full (store_max_bytes " + std::to_string(max_bytes_) + " reached in " +
                     path_.string() + ")";
  } else if (TryCommit(retry_, ops, false, result)) {
    retry_.clear();
    return result;
  }
  // The batch's new jobs are refused (their clients are told); what else it held must not
  // be lost: try it alone, and keep it for the next batch if that fails too.
  CommitResult again;
  if (TryCommit(retry_, ops, true, again)) {
    retry_.clear();
    return result;
  }
  for (const StoreOp& op : ops) {
    if (op.kind != StoreOp::Kind::kAddJob) retry_.push_back(op);
  }
  if (retry_.size() > kMaxRetryOps) {
    const std::size_t drop = retry_.size() - kMaxRetryOps;
    spdlog::error("job store: dropping {} pending removals and results (the store has failed for long)", drop);
    retry_.erase(retry_.begin(), retry_.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  return result;
}

std::optional<wire::JobRecord> JobStore::FindResult(const JobId& id, std::uint64_t now_ms) {
  Statement select(db_->handle,
                   "SELECT service, state, attempt, max_attempts, code, message, reply, finished_ms, expires_ms, durable "
                   "FROM results WHERE id = ? AND expires_ms > ?",
                   path_);
  select.Blob(1, id.View()).Int(2, Signed(now_ms));
  if (!select.Step()) return std::nullopt;
  wire::JobRecord record;
  record.id = id;
  record.service = select.ColumnText(0);
  record.state = static_cast<wire::JobState>(select.ColumnInt(1));
  record.attempt = static_cast<std::uint32_t>(select.ColumnUint(2));
  record.max_attempts = static_cast<std::uint32_t>(select.ColumnUint(3));
  record.code = static_cast<ErrorCode>(select.ColumnInt(4));
  record.message = select.ColumnText(5);
  record.reply = DecodeFrames(select.ColumnBlob(6));
  record.since_ms = select.ColumnUint(7);
  record.expires_ms = select.ColumnUint(8);
  record.durable = select.ColumnInt(9) != 0;
  return record;
}

wire::JobsPage JobStore::List(const wire::JobsQuery& query, std::uint64_t now_ms) {
  Statement select(
      db_->handle,
      "SELECT id, seq, service, state, attempt, max_attempts, worker, since_ms, code, message, expires_ms, durable FROM ("
      " SELECT j.id, j.seq, j.service, d.seq IS NOT NULL AS state, coalesce(d.attempt, j.attempt) AS attempt,"
      "  j.max_attempts, coalesce(d.worker, '') AS worker, coalesce(d.since_ms, j.accepted_ms) AS since_ms, 0 AS code,"
      "  '' AS message, 0 AS expires_ms, 1 AS durable FROM jobs j LEFT JOIN dispatches d ON d.seq = j.seq"
      " UNION ALL"
      " SELECT id, seq, service, state, attempt, max_attempts, '' AS worker, finished_ms AS since_ms, code, message,"
      "  expires_ms, durable FROM results WHERE expires_ms > ?1)"
      " WHERE seq > ?2 AND (?3 = '' OR service = ?3) AND (?4 < 0 OR state = ?4) ORDER BY seq LIMIT ?5",
      path_);
  select.Int(1, Signed(now_ms))
      .Int(2, Signed(query.after))
      .Text(3, query.service)
      .Int(4, query.state ? static_cast<int>(*query.state) : -1)
      .Int(5, static_cast<std::int64_t>(query.limit) + 1);
  wire::JobsPage page;
  std::uint64_t last_seq = 0;
  while (select.Step()) {
    if (page.rows.size() == query.limit) {
      page.next = last_seq;  // one more row exists
      break;
    }
    wire::JobRecord record;
    record.id = ColumnJobId(select, 0);
    last_seq = select.ColumnUint(1);
    record.service = select.ColumnText(2);
    record.state = static_cast<wire::JobState>(select.ColumnInt(3));
    record.attempt = static_cast<std::uint32_t>(select.ColumnUint(4));
    record.max_attempts = static_cast<std::uint32_t>(select.ColumnUint(5));
    record.worker = select.ColumnText(6);
    record.since_ms = select.ColumnUint(7);
    record.code = static_cast<ErrorCode>(select.ColumnInt(8));
    record.message = select.ColumnText(9);
    record.expires_ms = select.ColumnUint(10);
    record.durable = select.ColumnInt(11) != 0;
    page.rows.push_back(std::move(record));
  }
  return page;
}

std::size_t JobStore::PurgeExpired(std::uint64_t now_ms, std::size_t limit) {
  try {
    Statement purge(db_->handle,
                    "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE expires_ms <= ? LIMIT ?)", path_);
    purge.Int(1, Signed(now_ms)).Int(2, static_cast<std::int64_t>(limit));
    purge.Step();
    return static_cast<std::size_t>(sqlite3_changes(db_->handle));
  } catch (const Error& error) {
    spdlog::warn("job store: purging expired results failed: {}", error.what());
    return 0;
  }
}

}  // namespace courier::broker
