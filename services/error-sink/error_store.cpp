#include "error_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <variant>

#include "sqlite/statement.hpp"

namespace courier::sink {
namespace {

using sqlite::Fail;
using sqlite::Statement;

constexpr int kSchemaVersion = 1;
constexpr std::uint64_t kBatchMemoryMs = 24ULL * 3600 * 1000;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS reports (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  received_ms  INTEGER NOT NULL,
  time_ms      INTEGER NOT NULL,
  service      TEXT NOT NULL,
  job_id       BLOB NOT NULL,
  attempt      INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  trace_id     BLOB NOT NULL,
  reporter     TEXT NOT NULL,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  instance     TEXT NOT NULL,
  stage        TEXT NOT NULL,
  code         INTEGER NOT NULL,
  message      TEXT NOT NULL,
  sender       TEXT NOT NULL,
  broker       TEXT NOT NULL,
  envelope     BLOB,
  payload      BLOB,
  fingerprint  TEXT NOT NULL,
  replays      INTEGER NOT NULL DEFAULT 0,
  last_replay  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS reports_time ON reports(time_ms);
CREATE INDEX IF NOT EXISTS reports_service_time ON reports(service, time_ms);
CREATE INDEX IF NOT EXISTS reports_fingerprint ON reports(fingerprint);
CREATE INDEX IF NOT EXISTS reports_received ON reports(received_ms);
CREATE TABLE IF NOT EXISTS fingerprints (
  fingerprint TEXT PRIMARY KEY,
  service     TEXT NOT NULL,
  stage       TEXT NOT NULL,
  code        INTEGER NOT NULL,
  message     TEXT NOT NULL,
  count       INTEGER NOT NULL,
  first_ms    INTEGER NOT NULL,
  last_ms     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
  job_id      BLOB PRIMARY KEY,
  received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_received ON batches(received_ms);
CREATE TABLE IF NOT EXISTS drops (
  id          INTEGER PRIMARY KEY,
  received_ms INTEGER NOT NULL,
  reporter    TEXT NOT NULL,
  host        TEXT NOT NULL,
  pid         INTEGER NOT NULL,
  instance    TEXT NOT NULL,
  dropped     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
)sql";

constexpr const char* kColumns =
    "id, received_ms, time_ms, service, job_id, attempt, max_attempts, trace_id, reporter, host, pid, instance, "
    "stage, code, message, sender, broker, envelope IS NOT NULL, fingerprint, replays, last_replay, "
    "(SELECT count FROM fingerprints f WHERE f.fingerprint = reports.fingerprint)";

std::int64_t Signed(std::uint64_t value) {
  return value > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(value);
}

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// Reads the common columns of kColumns into a StoredReport.
StoredReport ReadRow(const Statement& row) {
  StoredReport out;
  out.id = row.ColumnInt(0);
  out.received_ms = row.ColumnUint(1);
  ErrorReport& report = out.report;
  report.time_ms = row.ColumnUint(2);
  report.service = row.ColumnText(3);
  if (const auto id = JobId::FromBytes(row.ColumnBlob(4))) report.job_id = *id;
  report.attempt = static_cast<std::uint32_t>(row.ColumnUint(5));
  report.max_attempts = static_cast<std::uint32_t>(row.ColumnUint(6));
  const std::string trace = row.ColumnBlob(7);
  if (trace.size() == 16) std::copy(trace.begin(), trace.end(), report.trace_id.begin());
  report.reporter = row.ColumnText(8);
  report.host = row.ColumnText(9);
  report.pid = row.ColumnUint(10);
  report.instance = row.ColumnText(11);
  report.stage = row.ColumnText(12);
  const std::uint64_t code = row.ColumnUint(13);
  report.code = IsWireCode(static_cast<std::uint32_t>(code)) ? static_cast<ErrorCode>(code) : ErrorCode::kInternal;
  report.message = row.ColumnText(14);
  report.sender = row.ColumnText(15);
  report.broker = row.ColumnText(16);
  out.has_job = row.ColumnInt(17) != 0;
  out.fingerprint = row.ColumnText(18);
  out.replays = static_cast<std::uint32_t>(row.ColumnUint(19));
  out.last_replay = row.ColumnText(20);
  out.occurrences = row.ColumnUint(21);
  return out;
}

// Appends " AND ..." conditions for `filter` and returns the values to bind in order.
struct Where {
  std::string sql;
  std::vector<std::variant<std::int64_t, std::string>> values;
};
Where BuildWhere(const ReportFilter& filter, bool with_paging) {
  Where where;
  where.sql = " WHERE 1=1";
  if (filter.service) {
    where.sql += " AND service = ?";
    where.values.emplace_back(*filter.service);
  }
  if (filter.since_ms) {
    where.sql += " AND time_ms >= ?";
    where.values.emplace_back(Signed(*filter.since_ms));
  }
  if (filter.code) {
    where.sql += " AND code = ?";
    where.values.emplace_back(static_cast<std::int64_t>(*filter.code));
  }
  if (filter.fingerprint) {
    where.sql += " AND fingerprint = ?";
    where.values.emplace_back(*filter.fingerprint);
  }
  if (with_paging && filter.before_id) {
    where.sql += " AND id < ?";
    where.values.emplace_back(*filter.before_id);
  }
  return where;
}

void BindAll(Statement& statement, const Where& where) {
  int index = 1;
  for (const auto& value : where.values) {
    if (const auto* number = std::get_if<std::int64_t>(&value)) {
      statement.Int(index++, *number);
    } else {
      statement.Text(index++, std::get<std::string>(value));
    }
  }
}

}  // namespace

std::string NormaliseMessage(std::string_view message) {
  std::string out;
  out.reserve(std::min<std::size_t>(message.size(), 1024));
  std::size_t i = 0;
  bool space = false;
  while (i < message.size() && out.size() < 1024) {
    const char c = message[i];
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      space = true;
      ++i;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    // A token of hex digits (8 or more, with at least one digit) is an id: replace it whole.
    if (IsHex(c)) {
      std::size_t end = i;
      bool digit = false;
      while (end < message.size() && IsHex(message[end])) digit |= IsDigit(message[end++]);
      const bool bounded_left = i == 0 || !std::isalnum(static_cast<unsigned char>(message[i - 1]));
      const bool bounded_right = end == message.size() || !std::isalnum(static_cast<unsigned char>(message[end]));
      if (end - i >= 8 && digit && bounded_left && bounded_right) {
        out += '#';
        i = end;
        continue;
      }
    }
    if (IsDigit(c)) {
      while (i < message.size() && IsDigit(message[i])) ++i;
      out += '#';
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

std::string Fingerprint(const ErrorReport& report) {
  std::uint64_t hash = 14695981039346656037ULL;  // FNV-1a 64
  auto mix = [&hash](std::string_view bytes) {
    for (const char c : bytes) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ULL;
    }
    hash ^= 0xff;  // field separator
    hash *= 1099511628211ULL;
  };
  mix(report.service);
  mix(report.stage);
  mix(std::to_string(static_cast<unsigned>(report.code)));
  mix(NormaliseMessage(report.message));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[hash & 0xf];
    hash >>= 4;
  }
  return out;
}

std::filesystem::path ErrorStore::DefaultPath() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && state[0] == '/') {
    return std::filesystem::path(state) / "courier" / "errors.db";
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] == '\0') {
    throw Error(ErrorCode::kConfig, "neither XDG_STATE_HOME nor HOME is set: give the error database a path (--db)");
  }
  return std::filesystem::path(home) / ".local" / "state" / "courier" / "errors.db";
}

ErrorStore::ErrorStore(const std::filesystem::path& path, StoreLimits limits) : path_(path), limits_(limits) {
  if (limits_.max_age.count() <= 0 || limits_.max_reports == 0) {
    throw Error(ErrorCode::kConfig, "error store: max_age and max_reports must be positive");
  }
  std::error_code error;
  if (path_.has_parent_path() && !std::filesystem::exists(path_.parent_path(), error)) {
    std::filesystem::create_directories(path_.parent_path(), error);
    if (error) throw Error(ErrorCode::kIo, path_.parent_path().string() + ": " + error.message());
    ::chmod(path_.parent_path().c_str(), 0700);
  }
  // Create the file ourselves so that it is private from the start (SQLite gives the -wal
  // and -shm files the same permissions).
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::kIo, path_.string() + ": cannot create: " + std::strerror(errno));
  ::close(fd);
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(ErrorCode::kIo, path_.string() + ": cannot open: " + message);
  }
  try {
    sqlite3_busy_timeout(db_, 5000);
    {
      Statement wal(db_, "PRAGMA journal_mode=WAL", path_);
      if (!wal.Step() || wal.ColumnText(0) != "wal") {
        throw Error(ErrorCode::kIo, path_.string() + ": the database refuses WAL mode");
      }
    }
    Exec(limits_.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    int version = 0;
    {
      Statement user_version(db_, "PRAGMA user_version", path_);
      if (user_version.Step()) version = static_cast<int>(user_version.ColumnInt(0));
    }
    if (version > kSchemaVersion) {
      throw Error(ErrorCode::kConfig, path_.string() + ": written by a newer error sink (schema " +
                                          std::to_string(version) + ")");
    }
    Exec("BEGIN IMMEDIATE");
    try {
      Exec(kSchema);
      Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
      Exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    std::lock_guard lock(mutex_);
    PruneLocked(NowUnixMs());
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

ErrorStore::~ErrorStore() {
  if (db_ != nullptr) sqlite3_close(db_);
}

void ErrorStore::Exec(const char* sql) const {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    throw Error(ErrorCode::kIo, path_.string() + ": " + text);
  }
}

std::uint64_t ErrorStore::Meta(const char* key) const {
  Statement select(db_, "SELECT value FROM meta WHERE key = ?", path_);
  select.Text(1, key);
  return select.Step() ? select.ColumnUint(0) : 0;
}

void ErrorStore::AddMeta(const char* key, std::uint64_t delta) const {
  if (delta == 0) return;
  Statement upsert(db_,
                   "INSERT INTO meta(key, value) VALUES(?, ?) "
                   "ON CONFLICT(key) DO UPDATE SET value = CASE WHEN value > 9223372036854775807 - excluded.value "
                   "THEN 9223372036854775807 ELSE value + excluded.value END",  // saturates, never wraps
                   path_);
  upsert.Text(1, key).Int(2, Signed(delta));
  upsert.Step();
}

ErrorStore::InsertResult ErrorStore::Insert(const JobId& batch_id, const detail::ErrorBatch& batch,
                                            std::uint64_t received_ms) {
  InsertResult result;
  std::lock_guard lock(mutex_);
  Exec("BEGIN IMMEDIATE");
  try {
    if (!batch_id.IsZero()) {
      Statement seen(db_, "INSERT OR IGNORE INTO batches(job_id, received_ms) VALUES(?, ?)", path_);
      seen.Blob(1, batch_id.View()).Int(2, Signed(received_ms));
      seen.Step();
      if (sqlite3_changes(db_) == 0) {
        AddMeta("duplicate_batches", 1);
        Exec("COMMIT");
        result.duplicate = true;
        return result;
      }
    }
    Statement insert(db_,
                     "INSERT INTO reports(received_ms, time_ms, service, job_id, attempt, max_attempts, trace_id, "
                     "reporter, host, pid, instance, stage, code, message, sender, broker, envelope, payload, "
                     "fingerprint) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     path_);
    Statement group(db_,
                    "INSERT INTO fingerprints(fingerprint, service, stage, code, message, count, first_ms, last_ms) "
                    "VALUES(?,?,?,?,?,1,?,?) ON CONFLICT(fingerprint) DO UPDATE SET count = count + 1, "
                    "first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms)",
                    path_);
    for (const ErrorReport& report : batch.reports) {
      const std::string fingerprint = Fingerprint(report);
      const std::uint64_t time_ms = report.time_ms != 0 ? report.time_ms : received_ms;
      const bool dead_letter = !report.envelope.empty() || !report.payload.empty();
      const bool traced = std::any_of(report.trace_id.begin(), report.trace_id.end(), [](auto b) { return b != 0; });
      insert.Int(1, Signed(received_ms))
          .Int(2, Signed(time_ms))
          .Text(3, report.service)
          .Blob(4, report.job_id.View())
          .Int(5, report.attempt)
          .Int(6, report.max_attempts)
          .Blob(7, traced ? std::string_view(reinterpret_cast<const char*>(report.trace_id.data()), 16)
                          : std::string_view())
          .Text(8, report.reporter)
          .Text(9, report.host)
          .Int(10, Signed(report.pid))
          .Text(11, report.instance)
          .Text(12, report.stage)
          .Int(13, static_cast<std::int64_t>(report.code))
          .Text(14, report.message)
          .Text(15, report.sender)
          .Text(16, report.broker);
      if (dead_letter) {
        insert.Blob(17, report.envelope).Blob(18, report.payload);
      } else {
        insert.Null(17).Null(18);
      }
      insert.Text(19, fingerprint);
      insert.Step();
      result.ids.push_back(sqlite3_last_insert_rowid(db_));
      insert.Reset();
      group.Text(1, fingerprint)
          .Text(2, report.service)
          .Text(3, report.stage)
          .Int(4, static_cast<std::int64_t>(report.code))
          .Text(5, NormaliseMessage(report.message))
          .Int(6, Signed(time_ms))
          .Int(7, Signed(time_ms));
      group.Step();
      group.Reset();
    }
    if (batch.dropped > 0) {
      Statement drop(db_,
                     "INSERT INTO drops(received_ms, reporter, host, pid, instance, dropped) VALUES(?,?,?,?,?,?)",
                     path_);
      const ErrorReport* first = batch.reports.empty() ? nullptr : &batch.reports.front();
      drop.Int(1, Signed(received_ms))
          .Text(2, !batch.reporter.empty() || first == nullptr ? batch.reporter : first->reporter)
          .Text(3, !batch.host.empty() || first == nullptr ? batch.host : first->host)
          .Int(4, Signed(batch.pid != 0 || first == nullptr ? batch.pid : first->pid))
          .Text(5, !batch.instance.empty() || first == nullptr ? batch.instance : first->instance)
          .Int(6, Signed(batch.dropped));
      drop.Step();
      AddMeta("dropped", batch.dropped);
    }
    AddMeta("received", batch.reports.size());
    Exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  inserted_since_prune_ += batch.reports.size();
  const auto now = std::chrono::steady_clock::now();
  if (now - last_prune_ >= limits_.prune_interval ||
      inserted_since_prune_ >= std::max<std::uint64_t>(100, limits_.max_reports / 100)) {
    PruneLocked(received_ms);
  }
  return result;
}

std::vector<StoredReport> ErrorStore::List(const ReportFilter& filter) const {
  const Where where = BuildWhere(filter, true);
  const std::size_t limit = std::clamp<std::size_t>(filter.limit, 1, kMaxListLimit);
  std::lock_guard lock(mutex_);
  Statement select(db_,
                   std::string("SELECT ") + kColumns + " FROM reports" + where.sql + " ORDER BY id DESC LIMIT " +
                       std::to_string(limit),
                   path_);
  BindAll(select, where);
  std::vector<StoredReport> out;
  while (select.Step()) out.push_back(ReadRow(select));
  return out;
}

std::optional<StoredReport> ErrorStore::Find(std::int64_t id) const {
  std::lock_guard lock(mutex_);
  Statement select(db_, std::string("SELECT ") + kColumns + ", envelope, payload FROM reports WHERE id = ?", path_);
  select.Int(1, id);
  if (!select.Step()) return std::nullopt;
  StoredReport out = ReadRow(select);
  out.report.envelope = select.ColumnBlob(22);
  out.report.payload = select.ColumnBlob(23);
  return out;
}

std::vector<FingerprintGroup> ErrorStore::Groups(const ReportFilter& filter) const {
  const Where where = BuildWhere(filter, false);
  const std::size_t limit = std::clamp<std::size_t>(filter.limit, 1, kMaxListLimit);
  std::lock_guard lock(mutex_);
  Statement select(db_,
                   "SELECT f.fingerprint, f.service, f.stage, f.code, f.message, f.count, f.first_ms, f.last_ms, "
                   "r.last_id FROM fingerprints f JOIN (SELECT fingerprint, max(id) AS last_id FROM reports" +
                       where.sql + " GROUP BY fingerprint) r ON r.fingerprint = f.fingerprint "
                       "ORDER BY f.last_ms DESC, r.last_id DESC LIMIT " + std::to_string(limit),
                   path_);
  BindAll(select, where);
  std::vector<FingerprintGroup> out;
  while (select.Step()) {
    FingerprintGroup group;
    group.fingerprint = select.ColumnText(0);
    group.service = select.ColumnText(1);
    group.stage = select.ColumnText(2);
    const std::uint64_t code = select.ColumnUint(3);
    group.code = IsWireCode(static_cast<std::uint32_t>(code)) ? static_cast<ErrorCode>(code) : ErrorCode::kInternal;
    group.message = select.ColumnText(4);
    group.count = select.ColumnUint(5);
    group.first_ms = select.ColumnUint(6);
    group.last_ms = select.ColumnUint(7);
    group.last_id = select.ColumnInt(8);
    out.push_back(std::move(group));
  }
  return out;
}

bool ErrorStore::RecordReplay(std::int64_t id, std::string_view outcome, std::uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  Statement update(db_, "UPDATE reports SET replays = replays + 1, last_replay = ? WHERE id = ?", path_);
  update.Text(1, std::to_string(now_ms) + " " + std::string(outcome)).Int(2, id);
  update.Step();
  return sqlite3_changes(db_) > 0;
}

std::size_t ErrorStore::Prune(std::uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  return PruneLocked(now_ms);
}

std::size_t ErrorStore::PruneLocked(std::uint64_t now_ms) {
  last_prune_ = std::chrono::steady_clock::now();
  inserted_since_prune_ = 0;
  const std::uint64_t age = static_cast<std::uint64_t>(limits_.max_age.count());
  const std::int64_t cutoff = now_ms > age ? Signed(now_ms - age) : 0;
  std::size_t deleted = 0;
  Exec("BEGIN IMMEDIATE");
  try {
    {
      Statement old(db_, "DELETE FROM reports WHERE received_ms < ?", path_);
      old.Int(1, cutoff);
      old.Step();
      deleted += static_cast<std::size_t>(sqlite3_changes(db_));
    }
    {
      Statement boundary(db_, "SELECT id FROM reports ORDER BY id DESC LIMIT 1 OFFSET ?", path_);
      boundary.Int(1, Signed(limits_.max_reports));
      if (boundary.Step()) {
        const std::int64_t last_excess = boundary.ColumnInt(0);
        Statement excess(db_, "DELETE FROM reports WHERE id <= ?", path_);
        excess.Int(1, last_excess);
        excess.Step();
        deleted += static_cast<std::size_t>(sqlite3_changes(db_));
      }
    }
    if (deleted > 0) {
      Exec("DELETE FROM fingerprints WHERE fingerprint NOT IN (SELECT fingerprint FROM reports)");
      AddMeta("pruned", deleted);
    }
    {
      Statement drops(db_, "DELETE FROM drops WHERE received_ms < ?", path_);
      drops.Int(1, cutoff);
      drops.Step();
    }
    {
      Statement batches(db_, "DELETE FROM batches WHERE received_ms < ?", path_);
      batches.Int(1, now_ms > kBatchMemoryMs ? Signed(now_ms - kBatchMemoryMs) : 0);
      batches.Step();
    }
    Exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return deleted;
}

StoreStats ErrorStore::Stats() const {
  std::lock_guard lock(mutex_);
  StoreStats stats;
  {
    Statement count(db_, "SELECT count(*) FROM reports", path_);
    if (count.Step()) stats.stored = count.ColumnUint(0);
  }
  {
    Statement count(db_, "SELECT count(*) FROM fingerprints", path_);
    if (count.Step()) stats.fingerprints = count.ColumnUint(0);
  }
  stats.received = Meta("received");
  stats.dropped = Meta("dropped");
  stats.duplicate_batches = Meta("duplicate_batches");
  stats.pruned = Meta("pruned");
  return stats;
}

}  // namespace courier::sink
