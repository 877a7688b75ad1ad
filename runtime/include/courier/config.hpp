// courier/config.hpp — strict, validated reading of Courier's TOML files.
//
// Every component (broker, worker host, plugin, client, services) reads its settings
// through a ConfigSection: typed getters with defaults and ranges, then
// RejectUnknownKeys(). Every failure is a courier::Error(kConfig) whose message names the
// file, line, column and dotted key, e.g.
//   "broker.toml:12:1: broker.queue_limit: expected an integer in [1, 10000000], got 0".
//
// A getter marks its key as read; RejectUnknownKeys() fails on the first key of this table
// that no getter (nor Section/SectionArray) asked for, so typos never pass silently.
// Thread-safety: a ConfigSection is a value; copies share the parsed document read-only
// and share the set of keys read, so use one section from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace courier {

class ConfigSection {
 public:
  // Returns: the root table of a TOML file. Throws: Error(kConfig) if the file cannot be
  // read or does not parse (with the parser's line and column).
  static ConfigSection LoadFile(const std::filesystem::path& path);
  // Returns: the root table of TOML text; `source_name` stands in for a file name in errors.
  static ConfigSection Parse(std::string_view text, std::string source_name);
  // Returns: an empty section (every getter yields its default); for running on defaults.
  static ConfigSection Empty(std::string source_name = "<defaults>");

  ConfigSection(const ConfigSection&);
  ConfigSection(ConfigSection&&) noexcept;
  ConfigSection& operator=(const ConfigSection&);
  ConfigSection& operator=(ConfigSection&&) noexcept;
  ~ConfigSection();

  bool Has(std::string_view key) const;
  // Returns: the keys of this table in file order (for maps such as [services.NAME]).
  std::vector<std::string> Keys() const;

  // Returns: the sub-table `key`, or an empty section if absent. Throws if `key` is not a table.
  ConfigSection Section(std::string_view key) const;
  // Returns: each table of the array of tables `[[key]]`; empty if absent.
  std::vector<ConfigSection> SectionArray(std::string_view key) const;

  std::string GetString(std::string_view key, std::string_view fallback) const;
  std::optional<std::string> GetOptionalString(std::string_view key) const;
  std::int64_t GetInt(std::string_view key, std::int64_t fallback, std::int64_t min,
                      std::int64_t max) const;
  double GetDouble(std::string_view key, double fallback, double min, double max) const;
  bool GetBool(std::string_view key, bool fallback) const;
  // Accepts an integer (milliseconds) or a string with a unit: "250ms", "3s", "5m", "1h".
  std::chrono::milliseconds GetDuration(std::string_view key, std::chrono::milliseconds fallback,
                                        std::chrono::milliseconds min,
                                        std::chrono::milliseconds max) const;
  // Accepts an integer (bytes) or a string with a binary unit: "64KiB", "512MiB", "2GiB".
  std::uint64_t GetBytes(std::string_view key, std::uint64_t fallback, std::uint64_t min,
                         std::uint64_t max) const;
  std::vector<std::string> GetStringArray(std::string_view key,
                                          std::vector<std::string> fallback) const;
  // Returns: the string value, which must be one of `allowed`.
  std::string GetEnum(std::string_view key, std::string_view fallback,
                      std::initializer_list<std::string_view> allowed) const;

  // Throws: Error(kConfig) naming the first key of this table that no getter asked for.
  void RejectUnknownKeys() const;

  // "broker.toml" and "services.echo": used to build error messages.
  const std::string& source() const;
  const std::string& path() const;
  // Returns: "file:line:col: path.key: " + what, for errors a component raises itself.
  std::string Describe(std::string_view key, std::string_view what) const;

 private:
  struct State;
  ConfigSection(std::shared_ptr<const State> state, const void* table, std::string path);
  std::shared_ptr<const State> state_;
  const void* table_;  // const toml::table*, owned by state_
  std::string path_;
};

}  // namespace courier
