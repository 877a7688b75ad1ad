// text_format.hpp — writing the Prometheus text exposition format 0.0.4, shared by every
// Courier process that serves /metrics (courier-broker --http, courier-metrics).
//
//   TextWriter w;
//   w.Family("courier_broker_jobs_accepted_total", MetricType::kCounter, "Jobs queued.");
//   w.Sample("courier_broker_jobs_accepted_total", Labels().Add("service", name), 12);
//   std::string page = w.Take();
//
// The writer keeps the format's rules that a reader of one page relies on: each family's
// HELP and TYPE lines come once, before its samples (a second Family call for a name
// throws std::logic_error: a programming error, caught by the unit tests); label values and
// HELP text are escaped; numbers are written so Prometheus parses them back exactly
// enough (integers as integers, doubles with 17 significant digits, NaN, +Inf, -Inf).
// Histograms are written from per-bucket counts: the writer makes them cumulative and
// writes le="+Inf" equal to _count.
// Thread-safety: plain values; a writer belongs to one thread.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>

namespace courier::prometheus {

// Content-Type of a text exposition page.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram, kSummary, kUntyped };
std::string_view ToString(MetricType type);

// Returns: `value` escaped for a label value: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view value);
// Returns: `text` escaped for a HELP line: backslash and newline.
std::string EscapeHelp(std::string_view text);
// Returns: `value` as the format writes a float: "NaN", "+Inf", "-Inf", or the shortest
// of %.17g that reads back to the same double.
std::string FormatNumber(double value);

// A label set, written {a="x",b="y"} in the order added (empty: no braces at all).
class Labels {
 public:
  Labels& Add(std::string_view name, std::string_view value);
  // Returns: a copy with one more label (for le= and quantile= on shared sets).
  Labels With(std::string_view name, std::string_view value) const;
  const std::string& text() const { return text_; }
  bool empty() const { return text_.empty(); }

 private:
  std::string text_;  // {…} or ""
};

class TextWriter {
 public:
  // Starts a family: its HELP and TYPE lines. Throws: std::logic_error if `name` was
  // started before on this page.
  void Family(std::string_view name, MetricType type, std::string_view help);
  // One sample line: name{labels} value. `name` is the family's name, or for histograms
  // and summaries the family's name plus _bucket, _sum or _count.
  void Sample(std::string_view name, const Labels& labels, std::uint64_t value);
  void Sample(std::string_view name, const Labels& labels, double value);
  // A family of one sample without labels (a counter or gauge of the whole process).
  template <typename Number>
  void Single(std::string_view name, MetricType type, std::string_view help, Number value) {
    Family(name, type, help);
    Sample(name, Labels(), value);
  }
  // The series of one histogram: name_bucket{labels,le=...} for each bound (cumulative),
  // le="+Inf", name_sum and name_count. `counts` holds the observations per bucket, not
  // cumulative: counts[i] for bounds[i-1] < v <= bounds[i], and one more entry past the last
  // bound for the rest (so counts.size() == bounds.size() + 1; fewer is an error).
  // Throws: std::logic_error when counts.size() != bounds.size() + 1.
  void Histogram(std::string_view name, const Labels& labels, std::span<const double> bounds,
                 std::span<const std::uint64_t> counts, double sum);
  // Returns: the page, and forgets it.
  std::string Take();

 private:
  std::string out_;
  std::set<std::string, std::less<>> families_;
};

}  // namespace courier::prometheus
