// exposition_check.hpp — a strict reader of the Prometheus text format 0.0.4 for tests:
// it parses a /metrics page and lists what breaks the format's rules, so the broker's,
// the collector's and the shared writer's tests hold every page to the same checks:
//
//   - every line is "# HELP name text", "# TYPE name type", another comment, or a sample
//     name{label="value",...} value with a valid metric name, label names and escapes
//     (\\, \", \n only) and a value that parses as a float (NaN, +Inf, -Inf allowed);
//   - HELP and TYPE come at most once per family, TYPE before the family's first sample;
//     a family's samples are contiguous (no family is resumed after another started);
//   - a counter's name ends in _total; a histogram's series are name_bucket (each with le),
//     name_sum and name_count; per label set its buckets are cumulative (non-decreasing as
//     le grows), the last is le="+Inf", and that bucket equals name_count.
//
// Thread-safety: plain values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace courier::prometheus {

struct ParsedSample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped
  double value = 0;
};

struct ParsedPage {
  std::vector<ParsedSample> samples;
  std::map<std::string, std::string> types;  // family → type
  std::vector<std::string> problems;         // empty: the page keeps every rule above

  // Returns: the value of the one sample named `name` whose labels include `labels`
  // (std::nullopt if there is none, or more than one).
  std::optional<double> Value(std::string_view name, const std::map<std::string, std::string>& labels = {}) const;
  // Returns: how many samples are named `name`.
  std::size_t Count(std::string_view name) const;
};

ParsedPage ParseExposition(std::string_view page);

}  // namespace courier::prometheus
