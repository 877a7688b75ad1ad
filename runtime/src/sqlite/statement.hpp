// sqlite/statement.hpp — a prepared SQLite statement that throws: the one wrapper of the
// sqlite3 C API that Courier's stores (the error sink's, the broker's job store) share.
// Errors become Error(kIo) naming the database file and what failed; the SQLite result
// code stays readable through sqlite3_errcode() on the connection (a full store is
// SQLITE_FULL). Thread-safety: none; one statement belongs to its connection's thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "courier/error.hpp"

namespace courier::sqlite {

[[noreturn]] inline void Fail(sqlite3* db, const std::filesystem::path& path, std::string_view what) {
  throw Error(ErrorCode::kIo, path.string() + ": " + std::string(what) + ": " +
                                  (db != nullptr ? sqlite3_errmsg(db) : "cannot open"));
}

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql, const std::filesystem::path& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &statement_, nullptr) != SQLITE_OK) {
      Fail(db, path, "prepare");
    }
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Int(int index, std::int64_t value) {
    Check(sqlite3_bind_int64(statement_, index, value));
    return *this;
  }
  Statement& Text(int index, std::string_view text) {
    Check(sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& Blob(int index, std::string_view bytes) {
    // A zero-length blob must still be a blob, not NULL: give SQLite a valid pointer.
    static const char kEmpty = 0;
    Check(sqlite3_bind_blob(statement_, index, bytes.empty() ? &kEmpty : bytes.data(),
                            static_cast<int>(bytes.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& Null(int index) {
    Check(sqlite3_bind_null(statement_, index));
    return *this;
  }
  // Returns: true while there is a row.
  bool Step() {
    const int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Fail(db_, path_, "step");
  }
  std::int64_t ColumnInt(int column) const { return sqlite3_column_int64(statement_, column); }
  std::uint64_t ColumnUint(int column) const {
    const std::int64_t value = ColumnInt(column);
    return value < 0 ? 0 : static_cast<std::uint64_t>(value);
  }
  std::string ColumnText(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
    return text == nullptr ? std::string() : std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
  }
  std::string ColumnBlob(int column) const {
    const void* blob = sqlite3_column_blob(statement_, column);
    return blob == nullptr ? std::string()
                           : std::string(static_cast<const char*>(blob),
                                         static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
  }
  bool ColumnNull(int column) const { return sqlite3_column_type(statement_, column) == SQLITE_NULL; }
  // Makes the statement ready to run again with new bindings.
  void Reset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK) Fail(db_, path_, "bind");
  }
  sqlite3* db_;
  const std::filesystem::path& path_;
  sqlite3_stmt* statement_ = nullptr;
};

}  // namespace courier::sqlite
