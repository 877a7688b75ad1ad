// courier/log.hpp — process-wide logging on spdlog.
//
// Configure once at start-up (before threads log); afterwards spdlog's default logger is
// thread-safe. Levels: trace, debug, info (default), warn, error, critical, off.
// Formats: "text" (default, human) or "json" (one JSON object per line:
// {"ts":"…","level":"info","logger":"broker","msg":"…"}).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace courier {

class ConfigSection;

struct LogOptions {
  std::string level = "info";
  std::string format = "text";  // "text" or "json"
  std::string name = "courier";  // the process's role, shown in each line
};

// Reads `level` and `format` from a [log] section (unknown keys rejected).
LogOptions ReadLogOptions(const ConfigSection& section, std::string name);

// Installs the default logger (stderr). Throws: Error(kConfig) for an unknown level/format.
void ConfigureLogging(const LogOptions& options);

// Allows at most `burst` events per `period`; for logging hostile input without letting a
// flood fill the disk. Not thread-safe: one per thread or per component.
class RateLimiter {
 public:
  RateLimiter(std::size_t burst, std::chrono::milliseconds period);
  // Returns: true if this event may be logged; counts the ones that may not.
  bool Allow(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  // Returns: events suppressed since the last call, and resets the count.
  std::size_t TakeSuppressed();

 private:
  std::size_t burst_;
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point window_start_{};
  std::size_t used_ = 0;
  std::size_t suppressed_ = 0;
};

}  // namespace courier
