// store_compare — SQLite (WAL) against LMDB on the access pattern of Courier's broker job
// store ("accepted means stored"). Standalone: only libsqlite3 and liblmdb, no project code.
//
// What one "loop turn" of the broker does, and so what one transaction here does:
//   append  G new jobs (16-byte random id, ~1 KiB payload, service, deadline, attempt, seq)
//   take    G queued jobs: mark dispatched (two integers and a short worker name)
//   delete  G dispatched jobs that finished; half of them leave a ~1 KiB result with an expiry
//   once a second (inside that turn's transaction): delete the results whose expiry passed
// Measured for G = 1, 16, 256 (and 1024 for memory and fsync) and the durability levels
//   fsync   every commit is on disk before it returns (the broker may acknowledge the job):
//           SQLite synchronous=FULL (one fdatasync of the WAL per commit), LMDB default
//           flags (fdatasync of the data pages, then of the meta page: two per commit)
//   write   every commit is in the OS page cache: survives a broker crash, not a power cut.
//           SQLite synchronous=NORMAL (fsync only at checkpoints; a power cut loses the last
//           commits, never the database). LMDB MDB_NOSYNC plus mdb_env_sync once a second:
//           the only LMDB mode with no fsync per commit. MDB_NOMETASYNC still fdatasyncs
//           the data pages at every commit, so it is a cheaper "fsync" (it may lose the last
//           commit on a power cut), not a "write": it is measured as its own row.
//           Caveat: after a power cut MDB_NOSYNC can leave a corrupt environment (pages and
//           meta page reach the disk in any order), SQLite NORMAL cannot.
//   memory  the "write" settings on tmpfs: the same code with no disk at all, the yardstick
//           for "what does durability cost"
// plus recovery (open a store the broker was killed over and read every queued job in
// insertion order), space reuse over 200k job lifetimes, and behaviour at the size limit.
//
// Usage: store_compare [--seconds S] [--groups 1,16,256] [--only steady,recovery,space,limit]
//                      [--dir DIR] [--mem-dir DIR]
//   --seconds  length of each steady-mix run (default 1.2; the whole run takes 45-55 s)
//   --dir      where on-disk stores go (default $TMPDIR or /tmp); a fresh subdirectory is
//              created there and removed at the end
//   --mem-dir  a tmpfs for the "memory" level (default /dev/shm; skipped if absent)

#include <lmdb.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kPayloadBytes = 1024;
constexpr std::size_t kResultBytes = 1024;
constexpr int64_t kResultTtlMs = 500;   // short, so that a 1.2 s run really expires results
constexpr int64_t kScanPeriodMs = 1000; // "once per second"
constexpr std::size_t kBacklog = 1000;  // queued jobs ahead of the ones being taken
constexpr uint64_t kNoLimit = 0;

using JobId = std::array<uint8_t, 16>;

enum class Level { fsync, write, memory, nometasync };

const char* level_name(Level l) {
  switch (l) {
    case Level::fsync: return "fsync";
    case Level::write: return "write";
    case Level::memory: return "memory";
    case Level::nometasync: return "metasync-off";
  }
  return "?";
}

// Thrown by a store when its size limit refuses a write; every other failure is a
// std::runtime_error. The caller then aborts the transaction: the whole group is refused.
struct StoreFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void put_be64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t get_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

uint64_t file_bytes(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// Flush a file and drop it from the page cache, so that a recovery reads from the device
// (as far as a VM lets us: the host may still cache it). Per-file, harmless to others.
void drop_from_cache(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

struct Job {
  JobId id;
  uint64_t seq;
  int64_t deadline_ms;
  uint32_t attempt;
  std::string_view service;
};

// What recovery rebuilds: the broker's in-memory queue, payload included (the broker holds
// payloads in memory today), so recovery time includes reading every byte.
struct RecoveredJob {
  JobId id;
  uint64_t seq;
  int64_t deadline_ms;
  uint32_t attempt;
  uint32_t state;
  std::string service;
  std::string payload;
};

struct DiskUse {
  uint64_t main = 0;  // SQLite: the database file; LMDB: data.mdb
  uint64_t aux = 0;   // SQLite: the WAL; LMDB: lock.mdb (not data)
};

// The broker's view of a store. One writer, explicit transactions (= one loop turn).
class Store {
 public:
  virtual ~Store() = default;
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void abort() = 0;
  virtual void append(const Job& job, std::span<const uint8_t> payload) = 0;
  virtual void take(const JobId& id, int64_t now_ms, std::string_view worker) = 0;
  virtual void remove(const JobId& id) = 0;
  virtual void put_result(const JobId& id, int64_t expiry_ms, std::span<const uint8_t> body) = 0;
  virtual std::size_t expire(int64_t now_ms) = 0;  // inside a transaction
  virtual void periodic() {}                       // once a second, outside a transaction
  virtual std::vector<RecoveredJob> recover() = 0; // every job, in insertion order
  virtual void raise_limit(uint64_t bytes) = 0;    // online, outside a transaction
  virtual DiskUse disk_use() const = 0;
};

// ---------------------------------------------------------------------------------------
// SQLite. jobs is a rowid table whose rowid IS the sequence number: appends go to the right
// edge of the table B-tree (dense pages) and recovery in insertion order is a plain table
// scan. The random 16-byte id lives in a UNIQUE index (small entries, random inserts).
// Payload is the last column so the small fields come first in the record.

class SqliteStore final : public Store {
 public:
  SqliteStore(const fs::path& dir, Level level, uint64_t max_bytes) : path_(dir / "jobs.db") {
    fs::create_directories(dir);
    check(sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
          "open");
    exec("PRAGMA journal_mode=WAL");  // readers never block the writer; one fsync per commit
    // FULL in WAL: fsync the WAL at every commit. NORMAL in WAL: fsync only at checkpoints;
    // a power cut loses the last commits but never corrupts the database.
    exec(level == Level::fsync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    // 64 MiB page cache: the default 2 MiB is smaller than the steady working set (backlog
    // plus unexpired results) and would turn reads into read(2) calls; LMDB maps everything.
    exec("PRAGMA cache_size=-65536");
    if (max_bytes != kNoLimit) raise_limit(max_bytes);
    exec(
        "CREATE TABLE IF NOT EXISTS jobs(seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
        " service TEXT NOT NULL, deadline_ms INTEGER NOT NULL, attempt INTEGER NOT NULL,"
        " state INTEGER NOT NULL, dispatched_ms INTEGER, worker TEXT, payload BLOB NOT NULL)");
    exec(
        "CREATE TABLE IF NOT EXISTS results(id BLOB PRIMARY KEY, expiry_ms INTEGER NOT NULL,"
        " body BLOB NOT NULL)");
    exec("CREATE INDEX IF NOT EXISTS results_expiry ON results(expiry_ms)");
    begin_ = prepare("BEGIN IMMEDIATE");
    commit_ = prepare("COMMIT");
    append_ = prepare(
        "INSERT INTO jobs(seq, id, service, deadline_ms, attempt, state, payload)"
        " VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6)");
    take_ = prepare("UPDATE jobs SET state=1, dispatched_ms=?2, worker=?3 WHERE id=?1");
    remove_ = prepare("DELETE FROM jobs WHERE id=?1");
    result_ = prepare("INSERT OR REPLACE INTO results(id, expiry_ms, body) VALUES(?1, ?2, ?3)");
    expire_ = prepare("DELETE FROM results WHERE expiry_ms <= ?1");
  }
  ~SqliteStore() override {
    for (auto* s : {begin_, commit_, append_, take_, remove_, result_, expire_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void begin() override { step(begin_); }
  void commit() override { step(commit_); }
  void abort() override {
    // After SQLITE_FULL SQLite may already have rolled the whole transaction back itself
    // (documented for FULL/IOERR/NOMEM); ROLLBACK is only valid if a transaction is open.
    if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK");
  }
  bool in_transaction() const { return !sqlite3_get_autocommit(db_); }

  void append(const Job& j, std::span<const uint8_t> payload) override {
    sqlite3_bind_int64(append_, 1, static_cast<sqlite3_int64>(j.seq));
    sqlite3_bind_blob(append_, 2, j.id.data(), static_cast<int>(j.id.size()), SQLITE_STATIC);
    sqlite3_bind_text(append_, 3, j.service.data(), static_cast<int>(j.service.size()), SQLITE_STATIC);
    sqlite3_bind_int64(append_, 4, j.deadline_ms);
    sqlite3_bind_int64(append_, 5, j.attempt);
    sqlite3_bind_blob(append_, 6, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
    step(append_);
  }
  void take(const JobId& id, int64_t now_ms, std::string_view worker) override {
    sqlite3_bind_blob(take_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    sqlite3_bind_int64(take_, 2, now_ms);
    sqlite3_bind_text(take_, 3, worker.data(), static_cast<int>(worker.size()), SQLITE_STATIC);
    step(take_);
  }
  void remove(const JobId& id) override {
    sqlite3_bind_blob(remove_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    step(remove_);
  }
  void put_result(const JobId& id, int64_t expiry_ms, std::span<const uint8_t> body) override {
    sqlite3_bind_blob(result_, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    sqlite3_bind_int64(result_, 2, expiry_ms);
    sqlite3_bind_blob(result_, 3, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
    step(result_);
  }
  std::size_t expire(int64_t now_ms) override {
    sqlite3_bind_int64(expire_, 1, now_ms);  // a range delete over the expiry index
    step(expire_);
    return static_cast<std::size_t>(sqlite3_changes(db_));
  }
  std::vector<RecoveredJob> recover() override {
    sqlite3_stmt* s = prepare(
        "SELECT seq, id, service, deadline_ms, attempt, state, payload FROM jobs ORDER BY seq");
    std::vector<RecoveredJob> out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      RecoveredJob r;
      r.seq = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
      std::memcpy(r.id.data(), sqlite3_column_blob(s, 1), r.id.size());
      r.service.assign(reinterpret_cast<const char*>(sqlite3_column_text(s, 2)),
                       static_cast<std::size_t>(sqlite3_column_bytes(s, 2)));
      r.deadline_ms = sqlite3_column_int64(s, 3);
      r.attempt = static_cast<uint32_t>(sqlite3_column_int64(s, 4));
      r.state = static_cast<uint32_t>(sqlite3_column_int64(s, 5));
      r.payload.assign(static_cast<const char*>(sqlite3_column_blob(s, 6)),
                       static_cast<std::size_t>(sqlite3_column_bytes(s, 6)));
      out.push_back(std::move(r));
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) throw std::runtime_error(std::string("sqlite recover: ") + sqlite3_errmsg(db_));
    return out;
  }
  void raise_limit(uint64_t bytes) override {
    // max_page_count is per connection, not stored in the file: set it at every open.
    exec("PRAGMA max_page_count=" + std::to_string(bytes / 4096));
  }
  DiskUse disk_use() const override {
    return {file_bytes(path_), file_bytes(path_.string() + "-wal")};
  }

 private:
  void check(int rc, const char* what) {
    if (rc != SQLITE_OK) {
      throw std::runtime_error(std::string("sqlite ") + what + ": " +
                               (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)));
    }
  }
  void exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_FULL) {
      sqlite3_free(err);
      throw StoreFull("SQLITE_FULL");
    }
    if (rc != SQLITE_OK) {
      std::string msg = "sqlite: " + sql + ": " + (err ? err : "?");
      sqlite3_free(err);
      throw std::runtime_error(msg);
    }
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    check(sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr), sql);
    return s;
  }
  void step(sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return;
    if (rc == SQLITE_FULL) throw StoreFull("SQLITE_FULL");
    throw std::runtime_error(std::string("sqlite step: ") + sqlite3_errmsg(db_));
  }

  fs::path path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt *begin_ = nullptr, *commit_ = nullptr, *append_ = nullptr, *take_ = nullptr,
               *remove_ = nullptr, *result_ = nullptr, *expire_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// LMDB. The same layout as the SQLite schema, as four named databases in one environment:
//   jobs     big-endian seq (8) -> JobHeader + payload   (MDB_APPEND: dense pages, recovery
//                                                          in insertion order is one cursor walk)
//   job_ids  id (16) -> big-endian seq (8)               (the random-key index)
//   results     big-endian expiry (8) + id (16) -> body  (expiry grows with time, so this is
//                                                        near-append too, and "expired" is a
//                                                        prefix: the scan deletes from the front)
//   result_ids  id (16) -> big-endian expiry (8)         (find a result by job id)
// (A first version keyed results by the random id, with a separate expiry index: 1 KiB
// values inserted at random positions left pages half full, and the space test's file
// was 65 MiB instead of 42.)
// Values stay below LMDB's node limit (~2 KiB on 4 KiB pages); bigger payloads would go to
// overflow pages, which LMDB reuses poorly (they need contiguous free runs).

struct JobHeader {
  uint8_t id[16];
  int64_t deadline_ms;
  int64_t dispatched_ms;
  uint32_t attempt;
  uint32_t state;
  char service[16];
  char worker[24];
};
static_assert(sizeof(JobHeader) == 80, "no padding: the header is copied as bytes");

class LmdbStore final : public Store {
 public:
  LmdbStore(const fs::path& dir, Level level, uint64_t map_bytes) : dir_(dir), level_(level) {
    fs::create_directories(dir);
    check(mdb_env_create(&env_), "env_create");
    check(mdb_env_set_maxdbs(env_, 4), "set_maxdbs");
    check(mdb_env_set_mapsize(env_, map_bytes), "set_mapsize");
    unsigned flags = 0;  // fsync: fdatasync data pages, then write + fdatasync the meta page
    if (level == Level::write || level == Level::memory) flags = MDB_NOSYNC;
    if (level == Level::nometasync) flags = MDB_NOMETASYNC;  // one fdatasync per commit
    check(mdb_env_open(env_, dir.c_str(), flags, 0600), "env_open");
    MDB_txn* t = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &t), "txn_begin");
    check(mdb_dbi_open(t, "jobs", MDB_CREATE, &jobs_), "dbi jobs");
    check(mdb_dbi_open(t, "job_ids", MDB_CREATE, &ids_), "dbi job_ids");
    check(mdb_dbi_open(t, "results", MDB_CREATE, &results_), "dbi results");
    check(mdb_dbi_open(t, "result_ids", MDB_CREATE, &result_ids_), "dbi result_ids");
    check(mdb_txn_commit(t), "txn_commit");
  }
  ~LmdbStore() override {
    if (txn_) mdb_txn_abort(txn_);
    mdb_env_close(env_);
  }
  LmdbStore(const LmdbStore&) = delete;
  LmdbStore& operator=(const LmdbStore&) = delete;

  void begin() override { check(mdb_txn_begin(env_, nullptr, 0, &txn_), "txn_begin"); }
  void commit() override {
    const int rc = mdb_txn_commit(txn_);  // frees the txn even when it fails
    txn_ = nullptr;
    check(rc, "txn_commit");
  }
  void abort() override {
    // After MDB_MAP_FULL the transaction is in an error state: abort is the only way out.
    if (txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }

  void append(const Job& j, std::span<const uint8_t> payload) override {
    buf_.resize(sizeof(JobHeader) + payload.size());
    JobHeader h{};
    std::memcpy(h.id, j.id.data(), 16);
    h.deadline_ms = j.deadline_ms;
    h.attempt = j.attempt;
    std::memcpy(h.service, j.service.data(), std::min(j.service.size(), sizeof h.service));
    std::memcpy(buf_.data(), &h, sizeof h);
    std::memcpy(buf_.data() + sizeof h, payload.data(), payload.size());
    uint8_t seq[8];
    put_be64(seq, j.seq);
    MDB_val k{8, seq}, v{buf_.size(), buf_.data()};
    check(mdb_put(txn_, jobs_, &k, &v, MDB_APPEND), "put jobs");
    MDB_val ik{16, const_cast<uint8_t*>(j.id.data())}, iv{8, seq};
    check(mdb_put(txn_, ids_, &ik, &iv, MDB_NOOVERWRITE), "put job_ids");
  }
  void take(const JobId& id, int64_t now_ms, std::string_view worker) override {
    MDB_val seq = seq_of(id), v;
    check(mdb_get(txn_, jobs_, &seq, &v), "get jobs");
    // Values in the map are read-only (no MDB_WRITEMAP): copy, patch, put back.
    buf_.assign(static_cast<const uint8_t*>(v.mv_data), static_cast<const uint8_t*>(v.mv_data) + v.mv_size);
    JobHeader h;
    std::memcpy(&h, buf_.data(), sizeof h);
    h.state = 1;
    h.dispatched_ms = now_ms;
    std::memset(h.worker, 0, sizeof h.worker);
    std::memcpy(h.worker, worker.data(), std::min(worker.size(), sizeof h.worker));
    std::memcpy(buf_.data(), &h, sizeof h);
    MDB_val nv{buf_.size(), buf_.data()};
    uint8_t key[8];
    std::memcpy(key, seq.mv_data, 8);  // seq points into the map; copy before writing
    MDB_val k{8, key};
    check(mdb_put(txn_, jobs_, &k, &nv, 0), "put jobs (take)");
  }
  void remove(const JobId& id) override {
    MDB_val s = seq_of(id);
    uint8_t key[8];
    std::memcpy(key, s.mv_data, 8);
    MDB_val k{8, key}, ik{16, const_cast<uint8_t*>(id.data())};
    check(mdb_del(txn_, ids_, &ik, nullptr), "del job_ids");
    check(mdb_del(txn_, jobs_, &k, nullptr), "del jobs");
  }
  void put_result(const JobId& id, int64_t expiry_ms, std::span<const uint8_t> body) override {
    uint8_t key[24];
    put_be64(key, static_cast<uint64_t>(expiry_ms));
    std::memcpy(key + 8, id.data(), 16);
    MDB_val ik{16, const_cast<uint8_t*>(id.data())}, iv{8, key};
    const int rc = mdb_put(txn_, result_ids_, &ik, &iv, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {  // a result for this id already: replace it (as INSERT OR REPLACE)
      uint8_t old[24];
      std::memcpy(old, iv.mv_data, 8);  // on KEYEXIST, iv holds the existing value
      std::memcpy(old + 8, id.data(), 16);
      MDB_val ok{24, old};
      check(mdb_del(txn_, results_, &ok, nullptr), "del results (replace)");
      iv = {8, key};
      check(mdb_put(txn_, result_ids_, &ik, &iv, 0), "put result_ids");
    } else {
      check(rc, "put result_ids");
    }
    MDB_val k{24, key}, v{body.size(), const_cast<uint8_t*>(body.data())};
    check(mdb_put(txn_, results_, &k, &v, 0), "put results");
  }
  std::size_t expire(int64_t now_ms) override {
    MDB_cursor* c = nullptr;
    check(mdb_cursor_open(txn_, results_, &c), "cursor_open");
    std::size_t n = 0;
    MDB_val k, v;
    try {
      // The first key is always the earliest expiry: delete from the front until one is
      // still alive. (MDB_GET_CURRENT after deleting the last entry gives EINVAL, so each
      // round re-reads MDB_FIRST: a walk down the leftmost path, cheap.)
      int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
      while (rc == 0 && get_be64(static_cast<const uint8_t*>(k.mv_data)) <= static_cast<uint64_t>(now_ms)) {
        uint8_t id[16];
        std::memcpy(id, static_cast<const uint8_t*>(k.mv_data) + 8, 16);
        MDB_val rk{16, id};
        check(mdb_del(txn_, result_ids_, &rk, nullptr), "del result_ids");
        check(mdb_cursor_del(c, 0), "cursor_del");
        ++n;
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
      }
      if (rc != 0 && rc != MDB_NOTFOUND) check(rc, "cursor_get");
    } catch (...) {
      mdb_cursor_close(c);
      throw;
    }
    mdb_cursor_close(c);
    return n;
  }
  void periodic() override {
    // With MDB_NOSYNC nothing reaches the disk until the kernel writes it back; a forced
    // sync once a second bounds what a power cut loses, as SQLite's checkpoints do.
    if (level_ == Level::write || level_ == Level::memory) check(mdb_env_sync(env_, 1), "env_sync");
  }
  std::vector<RecoveredJob> recover() override {
    MDB_txn* t = nullptr;
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &t), "txn_begin ro");
    MDB_cursor* c = nullptr;
    std::vector<RecoveredJob> out;
    int rc = mdb_cursor_open(t, jobs_, &c);
    MDB_val k, v;
    if (rc == 0) {
      for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const auto* p = static_cast<const uint8_t*>(v.mv_data);
        JobHeader h;
        std::memcpy(&h, p, sizeof h);
        RecoveredJob r;
        std::memcpy(r.id.data(), h.id, 16);
        r.seq = get_be64(static_cast<const uint8_t*>(k.mv_data));
        r.deadline_ms = h.deadline_ms;
        r.attempt = h.attempt;
        r.state = h.state;
        r.service.assign(h.service, strnlen(h.service, sizeof h.service));
        r.payload.assign(reinterpret_cast<const char*>(p + sizeof h), v.mv_size - sizeof h);
        out.push_back(std::move(r));
      }
      mdb_cursor_close(c);
    }
    mdb_txn_abort(t);
    if (rc != MDB_NOTFOUND) check(rc, "recover");
    return out;
  }
  void raise_limit(uint64_t bytes) override {
    // Allowed while no transaction of this process is active; other processes pick the new
    // size up on their next write transaction.
    check(mdb_env_set_mapsize(env_, bytes), "set_mapsize (raise)");
  }
  DiskUse disk_use() const override {
    return {file_bytes(dir_ / "data.mdb"), file_bytes(dir_ / "lock.mdb")};
  }

 private:
  static void check(int rc, const char* what) {
    if (rc == 0) return;
    if (rc == MDB_MAP_FULL) throw StoreFull("MDB_MAP_FULL");
    throw std::runtime_error(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
  }
  MDB_val seq_of(const JobId& id) {
    MDB_val k{16, const_cast<uint8_t*>(id.data())}, v;
    check(mdb_get(txn_, ids_, &k, &v), "get job_ids");
    return v;
  }

  fs::path dir_;
  Level level_;
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
  MDB_dbi jobs_ = 0, ids_ = 0, results_ = 0, result_ids_ = 0;
  std::vector<uint8_t> buf_;
};

enum class Engine { sqlite, lmdb };
const char* engine_name(Engine e) { return e == Engine::sqlite ? "SQLite" : "LMDB"; }

std::unique_ptr<Store> open_store(Engine e, const fs::path& dir, Level level, uint64_t limit) {
  if (e == Engine::sqlite) return std::make_unique<SqliteStore>(dir, level, limit);
  // LMDB needs a map size; "no limit" means one far above anything this program stores.
  return std::make_unique<LmdbStore>(dir, level, limit == kNoLimit ? (uint64_t{1} << 30) : limit);
}

// ---------------------------------------------------------------------------------------
// The broker's side: which jobs exist, in which state. Only updated after a commit
// succeeded, so that a refused group leaves no trace here either.

struct Workload {
  std::mt19937_64 rng{0xC0FFEE};
  uint64_t next_seq = 1;
  std::deque<JobId> queued, dispatched;
  std::vector<uint8_t> payload = std::vector<uint8_t>(kPayloadBytes);
  std::vector<uint8_t> result = std::vector<uint8_t>(kResultBytes);
  // Ten services, short names like the broker's.
  std::array<std::string, 10> services;

  Workload() {
    for (auto& b : payload) b = static_cast<uint8_t>(rng());
    for (auto& b : result) b = static_cast<uint8_t>(rng());
    for (std::size_t i = 0; i < services.size(); ++i) services[i] = "svc.resize-" + std::to_string(i);
  }
  Job new_job(int64_t now_ms) {
    Job j{};
    for (std::size_t i = 0; i < 16; i += 8) {
      const uint64_t r = rng();
      std::memcpy(j.id.data() + i, &r, 8);
    }
    j.seq = next_seq++;
    j.deadline_ms = now_ms + 30'000;
    j.attempt = 1;
    j.service = services[j.seq % services.size()];
    return j;
  }
};

constexpr std::string_view kWorker = "host-07/worker-3";

// Append `n` jobs in groups of `group` (used for prefill and recovery stores).
void append_jobs(Store& s, Workload& w, std::size_t n, std::size_t group, int64_t now_ms) {
  while (n > 0) {
    const std::size_t g = std::min(n, group);
    std::vector<JobId> fresh;
    s.begin();
    for (std::size_t i = 0; i < g; ++i) {
      const Job j = w.new_job(now_ms);
      s.append(j, w.payload);
      fresh.push_back(j.id);
    }
    s.commit();
    w.queued.insert(w.queued.end(), fresh.begin(), fresh.end());
    n -= g;
  }
}

struct LoopOptions {
  std::size_t group = 1;
  double max_seconds = 1.0;
  uint64_t max_jobs = UINT64_MAX;
  int64_t sim_ms_per_turn = 0;  // 0: real clock; otherwise a simulated clock (space test)
};
struct LoopStats {
  uint64_t jobs = 0;
  double seconds = 0;
  std::vector<double> turn_us;
};

// The steady mix. Each turn: append G, take the G oldest queued, delete the G oldest
// dispatched (every other one leaves a result). A job therefore lives ~kBacklog/G turns
// queued and one turn dispatched, and each turn's jobs/s counts full lifetimes.
LoopStats run_loop(Store& s, Workload& w, const LoopOptions& o) {
  constexpr int64_t kEpochMs = 1'780'000'000'000;  // absolute-looking ms, as the broker uses
  const auto start = Clock::now();
  int64_t sim_now = kEpochMs;
  auto now_ms = [&] {
    if (o.sim_ms_per_turn) return sim_now;
    return kEpochMs + std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  };
  // The broker starts with work: a backlog of queued jobs and one group in dispatch.
  append_jobs(s, w, std::max(kBacklog, o.group) + o.group, 256, now_ms());
  s.begin();
  for (std::size_t i = 0; i < o.group; ++i) s.take(w.queued[i], now_ms(), kWorker);
  s.commit();
  for (std::size_t i = 0; i < o.group; ++i) {
    w.dispatched.push_back(w.queued.front());
    w.queued.pop_front();
  }

  LoopStats st;
  int64_t last_tick = now_ms();
  std::vector<JobId> fresh;
  const auto t_start = Clock::now();
  while (st.jobs < o.max_jobs && seconds_since(t_start) < o.max_seconds) {
    const auto t0 = Clock::now();
    const int64_t now = now_ms();
    const bool tick = now - last_tick >= kScanPeriodMs;
    s.begin();
    if (tick) s.expire(now);
    fresh.clear();
    for (std::size_t i = 0; i < o.group; ++i) {
      const Job j = w.new_job(now);
      s.append(j, w.payload);
      fresh.push_back(j.id);
    }
    for (std::size_t i = 0; i < o.group; ++i) s.take(w.queued[i], now, kWorker);
    for (std::size_t i = 0; i < o.group; ++i) {
      s.remove(w.dispatched[i]);
      if ((i & 1) == 0) s.put_result(w.dispatched[i], now + kResultTtlMs, w.result);
    }
    s.commit();
    if (tick) {
      s.periodic();
      last_tick = now;
    }
    // Committed: move the broker's own bookkeeping.
    w.dispatched.erase(w.dispatched.begin(), w.dispatched.begin() + static_cast<std::ptrdiff_t>(o.group));
    for (std::size_t i = 0; i < o.group; ++i) {
      w.dispatched.push_back(w.queued.front());
      w.queued.pop_front();
    }
    w.queued.insert(w.queued.end(), fresh.begin(), fresh.end());
    st.turn_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    st.jobs += o.group;
    sim_now += o.sim_ms_per_turn;
  }
  st.seconds = seconds_since(t_start);
  return st;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string fmt_count(double v) {
  const std::string digits = std::to_string(static_cast<uint64_t>(v + 0.5));
  std::string out;  // built forwards: GCC 12 warns (-Wrestrict, falsely) on string::insert here
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}
std::string fmt_us(double us) {
  char b[32];
  if (us >= 10'000) std::snprintf(b, sizeof b, "%.0f ms", us / 1000);
  else if (us >= 1000) std::snprintf(b, sizeof b, "%.1f ms", us / 1000);
  else std::snprintf(b, sizeof b, "%.0f us", us);
  return b;
}
std::string fmt_mib(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return b;
}

// A scratch directory that is removed when it goes out of scope, also on an exception.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const fs::path& parent) {
    std::string templ = (parent / "courier-store-XXXXXX").string();
    if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp in " + parent.string());
    path = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

int g_dir_counter = 0;
fs::path fresh_dir(const fs::path& base, Engine e) {
  return base / (std::string(engine_name(e)) + "-" + std::to_string(++g_dir_counter));
}

// ---------------------------------------------------------------------------------------
// 1. Steady mix

// The fsync latency of this machine's disk, measured next to the stores just before each
// on-disk run: on this VM it flips between ~0.1-0.2 ms and ~4 ms from one minute to the
// next, and every "fsync" figure scales with it, so each row carries its own.
double fsync_probe_us(const fs::path& dir, int rounds) {
  const fs::path f = dir / "fsync-probe";
  const int fd = ::open(f.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
  if (fd < 0) return 0;
  std::vector<char> page(4096, 'x');
  std::vector<double> us;
  for (int i = 0; i < rounds; ++i) {  // 4 KiB into one of 8 pages, then fdatasync
    const auto t0 = Clock::now();
    if (::pwrite(fd, page.data(), page.size(), (i % 8) * 4096) != 4096 || ::fdatasync(fd) != 0) break;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  ::close(fd);
  fs::remove(f);
  return percentile(us, 0.5);
}

// Bytes this process passed to write(2)-family calls so far (/proc/self/io wchar). Not
// write_bytes: that counts page-cache folios as they become dirty, and with ext4's large
// folios here it came out ~5x above what strace showed LMDB writing.
uint64_t io_write_bytes() {
  FILE* f = std::fopen("/proc/self/io", "r");
  if (!f) return 0;
  char line[128];
  uint64_t v = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "wchar: %" SCNu64, &v) == 1) break;
  }
  std::fclose(f);
  return v;
}

std::vector<std::size_t> g_groups = {1, 16, 256};
constexpr std::size_t kBigGroup = 1024;  // memory and fsync only: where fsync's cost levels off

void steady(const fs::path& disk, const fs::path* mem, double seconds) {
  struct Row {
    Engine e;
    std::size_t g;
    Level l;
    double rate, p50, p99, kib_per_job, fsync_us;
  };
  std::vector<Row> rows;
  std::vector<std::size_t> groups = g_groups;
  if (std::find(groups.begin(), groups.end(), kBigGroup) == groups.end()) groups.push_back(kBigGroup);
  // The engines alternate run by run, so that a drift in the disk's latency hits both alike.
  for (std::size_t g : groups) {
    const bool big_only = std::find(g_groups.begin(), g_groups.end(), g) == g_groups.end();
    for (Level l : {Level::memory, Level::write, Level::fsync, Level::nometasync}) {
      if (l == Level::memory && !mem) continue;
      if (big_only && l != Level::memory && l != Level::fsync) continue;
      for (Engine e : {Engine::sqlite, Engine::lmdb}) {
        if (l == Level::nometasync && e != Engine::lmdb) continue;  // an LMDB-only flag
        const fs::path dir = fresh_dir(l == Level::memory ? *mem : disk, e);
        const double probe = l == Level::memory ? -1.0 : fsync_probe_us(disk, 16);
        LoopStats st;
        uint64_t written = 0;
        {
          auto s = open_store(e, dir, l, kNoLimit);
          Workload w;
          std::fprintf(stderr, "steady %s %s G=%zu ...\n", engine_name(e), level_name(l), g);
          const uint64_t before = io_write_bytes();  // after open: only the run itself counts
          st = run_loop(*s, w, {.group = g, .max_seconds = seconds});
          written = io_write_bytes() - before;
        }
        fs::remove_all(dir);
        rows.push_back({e, g, l, static_cast<double>(st.jobs) / st.seconds, percentile(st.turn_us, 0.5),
                        percentile(st.turn_us, 0.99),
                        l == Level::memory ? -1.0 : static_cast<double>(written) / 1024.0 / static_cast<double>(st.jobs),
                        probe});
      }
    }
  }

  std::printf("\nSteady mix: one turn = one transaction = append G + take G + delete G (half leave a\n"
              "1 KiB result; expired results deleted once a second). jobs/s = full job lifetimes/s.\n"
              "'x mem' = memory jobs/s / this jobs/s: what the durability level costs. KiB/job = bytes\n"
              "passed to write(2)/pwrite(2)/writev(2) per job (/proc/self/io wchar). disk fsync = p50\n"
              "of 16 x (4 KiB pwrite + fdatasync) next to the store just before the run.\n\n");
  std::printf("%-7s %-13s %5s %10s %10s %10s %7s %8s %11s\n", "engine", "level", "G", "jobs/s", "turn p50",
              "turn p99", "x mem", "KiB/job", "disk fsync");
  for (Engine e : {Engine::sqlite, Engine::lmdb}) {
    for (std::size_t g : groups) {
      double mem_rate = 0;
      for (Level l : {Level::memory, Level::write, Level::fsync, Level::nometasync}) {
        for (const Row& r : rows) {
          if (r.e != e || r.g != g || r.l != l) continue;
          if (l == Level::memory) mem_rate = r.rate;
          char ratio[16] = "";
          if (mem_rate > 0) std::snprintf(ratio, sizeof ratio, "%.2f", mem_rate / r.rate);
          char kib[16] = "-";
          if (r.kib_per_job >= 0) std::snprintf(kib, sizeof kib, "%.1f", r.kib_per_job);
          const std::string sync = r.fsync_us >= 0 ? fmt_us(r.fsync_us) : "-";
          std::printf("%-7s %-13s %5zu %10s %10s %10s %7s %8s %11s\n", engine_name(e), level_name(l), g,
                      fmt_count(r.rate).c_str(), fmt_us(r.p50).c_str(), fmt_us(r.p99).c_str(), ratio, kib,
                      sync.c_str());
        }
      }
    }
  }
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------
// 2. Recovery: the broker was killed (the store is never closed: a child process builds it
// and _exit()s, so SQLite's WAL is left as a crash leaves it), then restarts and reads
// every queued job in insertion order.

void recovery(const fs::path& disk) {
  std::printf("\nRecovery: open a store left by a killed broker and read all queued jobs in insertion\n"
              "order into memory (payloads included). cold = after fdatasync + posix_fadvise(DONTNEED)\n"
              "of the store files; warm = immediately again.\n\n");
  std::printf("%-7s %8s %12s %10s %10s %14s\n", "engine", "jobs", "store", "cold", "warm", "bytes/job");
  for (Engine e : {Engine::sqlite, Engine::lmdb}) {
    for (std::size_t n : {std::size_t{10'000}, std::size_t{100'000}}) {
      const fs::path dir = fresh_dir(disk, e);
      std::fprintf(stderr, "recovery %s %zu: building ...\n", engine_name(e), n);
      std::fflush(nullptr);
      const pid_t pid = ::fork();
      if (pid < 0) throw std::runtime_error("fork");
      if (pid == 0) {
        int rc = 0;
        try {
          auto s = open_store(e, dir, Level::write, kNoLimit);
          Workload w;
          append_jobs(*s, w, n, 256, 1'780'000'000'000);
          (void)s.release();  // deliberately never closed: the process "crashes"
        } catch (const std::exception& ex) {
          std::fprintf(stderr, "child: %s\n", ex.what());
          rc = 1;
        }
        std::fflush(nullptr);
        ::_exit(rc);
      }
      int status = 0;
      ::waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("recovery build failed");

      DiskUse before{};
      double ms[2] = {0, 0};
      for (int pass = 0; pass < 2; ++pass) {
        if (pass == 0) {
          for (const auto& f : fs::directory_iterator(dir)) drop_from_cache(f.path());
        }
        const auto t0 = Clock::now();
        auto s = open_store(e, dir, Level::write, kNoLimit);
        if (pass == 0) before = s->disk_use();  // SQLite: the WAL as the crash left it
        const auto jobs = s->recover();
        ms[pass] = seconds_since(t0) * 1000;
        bool ordered = jobs.size() == n;
        for (std::size_t i = 1; ordered && i < jobs.size(); ++i) ordered = jobs[i - 1].seq < jobs[i].seq;
        if (!ordered || jobs.back().payload.size() != kPayloadBytes) {
          throw std::runtime_error("recovery returned the wrong jobs");
        }
      }
      const uint64_t total = before.main + before.aux;
      char cold[16], warm[16];
      std::snprintf(cold, sizeof cold, "%.0f ms", ms[0]);
      std::snprintf(warm, sizeof warm, "%.0f ms", ms[1]);
      std::printf("%-7s %8s %12s %10s %10s %14s\n", engine_name(e), fmt_count(static_cast<double>(n)).c_str(),
                  fmt_mib(total).c_str(), cold, warm, fmt_count(static_cast<double>(total) / static_cast<double>(n)).c_str());
      std::fflush(stdout);
      fs::remove_all(dir);
    }
  }
}

// ---------------------------------------------------------------------------------------
// 3. Space: jobs live and die (G = 256, "write", a simulated clock of 10 ms a turn so that
// results expire at the same pace for both engines). If freed pages are reused, the file
// stops growing once the live set (backlog + unexpired results, ~20k x 1 KiB) is steady.

void space_reuse(const fs::path& disk) {
  std::printf("\nSpace: jobs live and die (G=256, write; simulated 25.6k jobs/s, results TTL 0.5 s,\n"
              "scanned every 1 s; at 50k and 100k everything left is deleted and the backlog refilled).\n"
              "File sizes: SQLite db + WAL, LMDB data.mdb.\n\n");
  std::printf("%-7s %22s %22s %22s %22s\n", "engine", "50k jobs", "100k jobs", "all deleted", "200k jobs");
  for (Engine e : {Engine::sqlite, Engine::lmdb}) {
    const fs::path dir = fresh_dir(disk, e);
    std::fprintf(stderr, "space %s ...\n", engine_name(e));
    std::string cells[4];
    auto cell = [e](DiskUse d) {
      return fmt_mib(d.main) + (e == Engine::sqlite ? " + " + fmt_mib(d.aux) : std::string());
    };
    {
      auto s = open_store(e, dir, Level::write, kNoLimit);
      Workload w;
      LoopOptions o{.group = 256, .max_seconds = 1e9, .max_jobs = 50'000, .sim_ms_per_turn = 10};
      run_loop(*s, w, o);
      cells[0] = cell(s->disk_use());
      // The loop re-adds its backlog on entry: drain first so the second half starts alike.
      auto drain = [&] {
        s->begin();
        for (const auto& id : w.queued) s->remove(id);
        for (const auto& id : w.dispatched) s->remove(id);
        s->expire(INT64_MAX);
        s->commit();
        w.queued.clear();
        w.dispatched.clear();
      };
      drain();
      run_loop(*s, w, o);
      cells[1] = cell(s->disk_use());
      drain();
      cells[2] = cell(s->disk_use());
      o.max_jobs = 100'000;
      run_loop(*s, w, o);
      cells[3] = cell(s->disk_use());
      drain();
    }
    fs::remove_all(dir);
    std::printf("%-7s %22s %22s %22s %22s\n", engine_name(e), cells[0].c_str(), cells[1].c_str(),
                cells[2].c_str(), cells[3].c_str());
    std::fflush(stdout);
  }
}

// ---------------------------------------------------------------------------------------
// 4. The size limit: 4 MiB (LMDB map size / SQLite max_page_count). Append in groups of 16
// until refused, then check what a broker needs: is the store intact, can it still take
// and finish jobs (both write), does space come back after deletes, can the limit be
// raised without a restart.

template <class F>
bool try_txn(Store& s, F&& body) {
  try {
    s.begin();
    body();
    s.commit();
    return true;
  } catch (const StoreFull&) {
    s.abort();
    return false;
  }
}

std::size_t append_until_full(Store& s, Workload& w, std::size_t group) {
  std::size_t n = 0;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    std::vector<JobId> fresh;
    const bool ok = try_txn(s, [&] {
      for (std::size_t i = 0; i < group; ++i) {
        const Job j = w.new_job(1'780'000'000'000);
        s.append(j, w.payload);
        fresh.push_back(j.id);
      }
    });
    if (!ok) return n;
    w.queued.insert(w.queued.end(), fresh.begin(), fresh.end());
    n += group;
  }
  throw std::runtime_error("store never filled up");
}

void size_limit(const fs::path& disk) {
  constexpr uint64_t kLimit = 4u << 20;
  constexpr std::size_t kGroup = 16;
  std::printf("\nSize limit 4 MiB (LMDB map size / SQLite max_page_count=1024), groups of %zu, write:\n", kGroup);
  for (Engine e : {Engine::sqlite, Engine::lmdb}) {
    const fs::path dir = fresh_dir(disk, e);
    std::fprintf(stderr, "size limit %s ...\n", engine_name(e));
    {
      auto s = open_store(e, dir, Level::write, kLimit);
      Workload w;
      const std::size_t first = append_until_full(*s, w, kGroup);
      const DiskUse at_full = s->disk_use();
      // Did the refused group vanish whole, and is the rest intact and readable?
      const bool intact = s->recover().size() == first;
      std::string rolled_back;
      if (auto* sq = dynamic_cast<SqliteStore*>(s.get())) {
        // Probe what SQLite did with the transaction on SQLITE_FULL.
        Workload probe;
        probe.next_seq = 1'000'000'000;
        probe.rng.seed(7);  // ids distinct from w's
        s->begin();
        try {
          for (int i = 0; i < 1000; ++i) s->append(probe.new_job(0), probe.payload);
          rolled_back = "(no FULL?)";
        } catch (const StoreFull&) {
          rolled_back = sq->in_transaction() ? "statement only, transaction still open"
                                             : "whole transaction, by SQLite itself";
        }
        s->abort();
      } else {
        // Nothing is undone by LMDB; what does the same transaction say to the next write?
        Workload probe;
        probe.next_seq = 1'000'000'000;
        probe.rng.seed(7);
        s->begin();
        try {
          for (int i = 0; i < 1000; ++i) s->append(probe.new_job(0), probe.payload);
          rolled_back = "(no MAP_FULL?)";
        } catch (const StoreFull&) {
          try {
            s->append(probe.new_job(0), probe.payload);
            rolled_back = "nothing, and the transaction still accepts writes";
          } catch (const std::exception& ex) {
            const bool bad = std::string_view(ex.what()).find("MDB_BAD_TXN") != std::string_view::npos;
            rolled_back = std::string("nothing; the next write in it fails with ") +
                          (bad ? "MDB_BAD_TXN" : ex.what()) + ", only mdb_txn_abort helps";
          }
        }
        s->abort();
      }
      // At the limit: take 16 queued jobs (an update), then finish 16 (delete + 8 results).
      const bool take_ok = try_txn(*s, [&] {
        for (std::size_t i = 0; i < kGroup; ++i) s->take(w.queued[i], 0, kWorker);
      });
      if (take_ok) {
        for (std::size_t i = 0; i < kGroup; ++i) {
          w.dispatched.push_back(w.queued.front());
          w.queued.pop_front();
        }
      }
      auto& finish_from = take_ok ? w.dispatched : w.queued;
      const bool finish_ok = try_txn(*s, [&] {
        for (std::size_t i = 0; i < kGroup; ++i) {
          s->remove(finish_from[i]);
          if ((i & 1) == 0) s->put_result(finish_from[i], 0, w.result);
        }
      });
      if (finish_ok) finish_from.erase(finish_from.begin(), finish_from.begin() + kGroup);
      const bool delete_only_ok = try_txn(*s, [&] {
        for (std::size_t i = 0; i < kGroup; ++i) s->remove(w.queued[i]);
      });
      if (delete_only_ok) w.queued.erase(w.queued.begin(), w.queued.begin() + kGroup);
      const bool delete_one_ok = try_txn(*s, [&] { s->remove(w.queued[0]); });
      if (delete_one_ok) w.queued.pop_front();
      // Free half of what is left (and the results), then fill up again.
      std::size_t half = w.queued.size() / 2;
      const std::size_t to_free = half;
      // One transaction first; if the limit refuses even that, in ever smaller ones (what
      // a broker would have to do to dig itself out).
      std::string freed = "REFUSED";
      for (std::size_t batch : {half, std::size_t{16}, std::size_t{1}}) {
        std::size_t done = 0;
        while (done < half) {
          const std::size_t n = std::min(batch, half - done);
          if (!try_txn(*s, [&] {
                for (std::size_t i = 0; i < n; ++i) s->remove(w.queued[i]);
              })) {
            break;
          }
          w.queued.erase(w.queued.begin(), w.queued.begin() + static_cast<std::ptrdiff_t>(n));
          done += n;
        }
        if (done == half) {
          freed = batch == half ? "ok in one txn" : "ok in txns of " + std::to_string(batch);
          break;
        }
        half -= done;
      }
      const bool results_gone = try_txn(*s, [&] { s->expire(INT64_MAX); });
      const std::size_t again = append_until_full(*s, w, kGroup);
      const DiskUse after_refill = s->disk_use();
      s->raise_limit(2 * kLimit);
      const std::size_t raised = append_until_full(*s, w, kGroup);
      const bool intact_end = s->recover().size() == w.queued.size() + w.dispatched.size();

      const std::string files = e == Engine::sqlite
                                    ? "db " + fmt_mib(at_full.main) + " + WAL " + fmt_mib(at_full.aux)
                                    : "data.mdb " + fmt_mib(at_full.main);
      std::printf("  %s: refused after %zu jobs (%s); earlier jobs intact, refused group\n"
                  "    left nothing: %s; what the error rolled back: %s\n"
                  "    then, in turn: take x16 %s, finish x16 with 8 results %s, delete x16 %s, delete x1 %s\n"
                  "    deleting %zu jobs: %s; then all results: %s; %zu jobs fit again (file %s)\n"
                  "    limit raised to 8 MiB online: %zu more jobs; all intact: %s\n",
                  engine_name(e), first, files.c_str(),
                  intact ? "yes" : "NO", rolled_back.c_str(),
                  take_ok ? "ok" : "REFUSED", finish_ok ? "ok" : "REFUSED", delete_only_ok ? "ok" : "REFUSED",
                  delete_one_ok ? "ok" : "REFUSED",
                  to_free, freed.c_str(), results_gone ? "ok" : "REFUSED", again, fmt_mib(after_refill.main).c_str(), raised,
                  intact_end ? "yes" : "NO");
      std::fflush(stdout);
    }
    fs::remove_all(dir);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.2;
  std::string only = "steady,recovery,space,limit";
  fs::path disk_parent = std::getenv("TMPDIR") && *std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
  fs::path mem_parent = "/dev/shm";
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) disk_parent = argv[++i];
    else if (a == "--mem-dir" && i + 1 < argc) mem_parent = argv[++i];
    else if (a == "--groups" && i + 1 < argc) {
      g_groups.clear();
      for (std::string_view v = argv[++i]; !v.empty();) {
        const auto comma = v.find(',');
        const long g = std::atol(std::string(v.substr(0, comma)).c_str());
        if (g < 1 || g > 65536) {
          std::fprintf(stderr, "store_compare: group sizes are 1..65536\n");
          return 2;
        }
        g_groups.push_back(static_cast<std::size_t>(g));
        v = comma == v.npos ? std::string_view{} : v.substr(comma + 1);
      }
    } else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: %s [--seconds S] [--groups 1,16,256] [--only steady,recovery,space,limit]\n"
                   "          [--dir DIR] [--mem-dir DIR]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    const auto t0 = Clock::now();
    ScratchDir disk(disk_parent);
    std::unique_ptr<ScratchDir> mem;
    if (fs::is_directory(mem_parent)) mem = std::make_unique<ScratchDir>(mem_parent);
    std::printf("SQLite %s, %s; on-disk stores in %s%s%s\n", sqlite3_libversion(),
                mdb_version(nullptr, nullptr, nullptr), disk.path.c_str(), mem ? ", memory level in " : "",
                mem ? mem->path.c_str() : " (no tmpfs: memory level skipped)");
    auto want = [&](const char* part) { return only.find(part) != std::string::npos; };
    if (want("steady")) steady(disk.path, mem ? &mem->path : nullptr, seconds);
    if (want("recovery")) recovery(disk.path);
    if (want("space")) space_reuse(disk.path);
    if (want("limit")) size_limit(disk.path);
    std::printf("\ntotal %.1f s\n", seconds_since(t0));
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "store_compare: %s\n", ex.what());
    return 1;
  }
  return 0;
}
