// cli_support.hpp — the pure parts of the `courier` command line: durations, the latency
// histogram, the load summary (text and JSON), tables, the progress line and exit codes.
// Kept apart from main.cpp so they are unit-tested without processes (cli_support_test.cpp).
// Thread-safety: values; a LatencyHistogram or Summary needs external locking when shared.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "courier/error.hpp"

namespace courier::cli {

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;           // everything succeeded
inline constexpr int kExitJobErrors = 1;    // a job (or the operation) failed
inline constexpr int kExitUsage = 2;        // bad command line, JSON or configuration
inline constexpr int kExitUnavailable = 3;  // no broker answered
inline constexpr int kExitNotFound = 4;     // courier job: no broker holds the job (not_found)
inline constexpr int kExitPending = 5;      // courier job: still queued or running when the wait ended

// Returns: the exit code for a failure with `code`.
int ExitCodeFor(ErrorCode code);

// Parses "250ms", "3s", "1.5s", "2m", "1h", "7d" or a bare number of milliseconds, between
// 1 ms and `max`. Throws: std::invalid_argument naming the text.
std::chrono::milliseconds ParseDuration(std::string_view text,
                                        std::chrono::milliseconds max = std::chrono::hours(24));


// Latencies in microseconds in log-linear buckets: exact below 256 µs, within 1 % above,
// in fixed memory whatever the number of samples.
class LatencyHistogram {
 public:
  void Add(std::chrono::microseconds latency);
  std::uint64_t count() const { return count_; }
  std::chrono::microseconds max() const { return std::chrono::microseconds(max_); }
  std::chrono::microseconds min() const { return std::chrono::microseconds(count_ == 0 ? 0 : min_); }
  // Returns: the nearest-rank percentile (q in [0, 1]), or 0 without samples.
  std::chrono::microseconds Percentile(double q) const;

 private:
  static constexpr int kSubBits = 7;
  static constexpr std::size_t kLinear = std::size_t{1} << (kSubBits + 1);  // 256 exact buckets
  static constexpr std::size_t kBuckets = kLinear + 56 * (std::size_t{1} << kSubBits);
  static std::size_t Bucket(std::uint64_t value);
  static std::uint64_t Representative(std::size_t bucket);

  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
};

// The outcome of `courier send --count N`.
struct Summary {
  std::uint64_t sent = 0;
  std::uint64_t ok = 0;
  std::map<std::string, std::uint64_t> errors;  // by error code name
  std::chrono::nanoseconds elapsed{0};
  LatencyHistogram latency;  // every answered job, ok or not
  bool interrupted = false;  // Ctrl-C stopped the run: sent - answered() jobs got no answer

  void AddOk(std::chrono::microseconds latency);
  void AddError(ErrorCode code, std::chrono::microseconds latency);
  std::uint64_t answered() const;
  double jobs_per_second() const;
  // {"sent":N,"ok":N,"errors":{"code":n},"jobs_per_s":x,"latency_ms":{"p50":..,"p90":..,"p99":..,"max":..}}
  // and, when interrupted, "interrupted":true,"unanswered":N at the end.
  std::string ToJson() const;
  // A few human lines (ends with a newline); when interrupted, a last line says so.
  std::string ToText() const;
  // Returns: kExitOk, kExitUnavailable if any job failed with kUnavailable, else kExitJobErrors.
  int ExitCode() const;
};

// Returns: the columns a terminal gives UTF-8 `text`: one per code point, two for East
// Asian wide and fullwidth characters (and emoji), none for combining marks and zero-width
// characters; an invalid byte counts as one column.
std::size_t DisplayWidth(std::string_view text);

// Returns: the rows as an aligned table with a header, padded by DisplayWidth (so "µs" or a
// CJK service name does not shift the columns); columns whose cells are all numbers are
// right-aligned. Every line ends with a newline.
std::string RenderTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// Returns: "[#####.....] done/total  ok N  errors N  R jobs/s" fitted to `width` columns.
std::string ProgressLine(std::uint64_t done, std::uint64_t total, std::uint64_t ok, std::uint64_t errors,
                         double seconds, std::size_t width);

// Makes quantiles given in ascending order of q (p50, p90, p99...) consistent with each
// other and with the maximum: each is at most `max` and at least the one before it.
// Absent values stay absent. Histogram estimates can break both rules when a source
// interpolates inside a bucket without clamping; a table must never show p90 > max.
void OrderQuantiles(std::span<std::optional<double>> ascending, std::optional<double> max);

// Returns: milliseconds with three decimals, e.g. "0.421".
std::string FormatMs(std::chrono::microseconds value);

// Returns: the name in `known` closest to `name` by edit distance, if it is close enough to
// be a likely misspelling (at most 2 edits, and at most half the name); "" otherwise.
std::string NearestName(std::string_view name, const std::vector<std::string>& known);

}  // namespace courier::cli
