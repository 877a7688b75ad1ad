#include "prometheus/exposition_check.hpp"

#include <cctype>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <set>
#include <utility>

namespace courier::prometheus {
namespace {

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

bool IsMetricName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  for (const char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

std::optional<double> ParseValue(std::string_view text) {
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text == "+Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  if (text.empty()) return std::nullopt;
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  return value;
}

// The family a sample belongs to, given the families declared so far.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      const std::string base = name.substr(0, name.size() - suffix.size());
      const auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

}  // namespace

std::optional<double> ParsedPage::Value(std::string_view name, const std::map<std::string, std::string>& labels) const {
  std::optional<double> found;
  for (const ParsedSample& sample : samples) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      const auto it = sample.labels.find(key);
      if (it == sample.labels.end() || it->second != value) match = false;
    }
    if (!match) continue;
    if (found) return std::nullopt;
    found = sample.value;
  }
  return found;
}

std::size_t ParsedPage::Count(std::string_view name) const {
  std::size_t count = 0;
  for (const ParsedSample& sample : samples) count += sample.name == name ? 1 : 0;
  return count;
}

ParsedPage ParseExposition(std::string_view page) {
  ParsedPage out;
  std::set<std::string> helped;
  std::set<std::string> finished;  // families whose samples ended (another family followed)
  std::string current;             // the family of the last sample
  std::size_t line_number = 0;
  auto problem = [&](const std::string& what) {
    out.problems.push_back("line " + std::to_string(line_number) + ": " + what);
  };
  if (!page.empty() && !page.ends_with('\n')) out.problems.emplace_back("the page does not end with a newline");
  std::size_t at = 0;
  while (at < page.size()) {
    ++line_number;
    const std::size_t end = page.find('\n', at);
    const std::string_view line = page.substr(at, end == std::string_view::npos ? page.size() - at : end - at);
    at = end == std::string_view::npos ? page.size() : end + 1;
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
        const bool is_help = line[2] == 'H';
        const std::string_view rest = line.substr(7);
        const std::size_t space = rest.find(' ');
        const std::string name(rest.substr(0, space));
        if (!IsMetricName(name)) problem("bad family name in: " + std::string(line));
        if (is_help) {
          if (!helped.insert(name).second) problem("second HELP for " + name);
          const std::string_view text = space == std::string_view::npos ? "" : rest.substr(space + 1);
          for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] == '\\' && (i + 1 >= text.size() || (text[i + 1] != '\\' && text[i + 1] != 'n'))) {
              problem("bad escape in HELP of " + name);
            }
            if (text[i] == '\\') ++i;
          }
        } else {
          const std::string type(space == std::string_view::npos ? "" : rest.substr(space + 1));
          static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
          if (!kTypes.contains(type)) problem("unknown type '" + type + "' for " + name);
          if (out.types.contains(name)) problem("second TYPE for " + name);
          if (finished.contains(name) || current == name) problem("TYPE after samples of " + name);
          if (type == "counter" && !name.ends_with("_total")) problem("counter " + name + " does not end in _total");
          out.types[name] = type;
        }
      }
      continue;
    }
    ParsedSample sample;
    std::size_t i = 0;
    while (i < line.size() && IsNameChar(line[i])) ++i;
    sample.name = std::string(line.substr(0, i));
    if (!IsMetricName(sample.name)) {
      problem("bad sample line: " + std::string(line));
      continue;
    }
    bool ok = true;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (ok && i < line.size() && line[i] != '}') {
        const std::size_t name_begin = i;
        while (i < line.size() && IsNameChar(line[i])) ++i;
        const std::string label(line.substr(name_begin, i - name_begin));
        if (label.empty() || !IsNameStart(label[0]) || label.find(':') != std::string::npos) ok = false;
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          ok = false;
          break;
        }
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size()) {
              ok = false;
              break;
            }
            const char next = line[i + 1];
            if (next == '\\' || next == '"') {
              value += next;
            } else if (next == 'n') {
              value += '\n';
            } else {
              ok = false;
            }
            i += 2;
          } else {
            value += line[i++];
          }
        }
        if (i >= line.size()) {
          ok = false;
          break;
        }
        ++i;  // closing quote
        if (sample.labels.contains(label)) ok = false;
        sample.labels[label] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size() || line[i] != '}') ok = false;
      ++i;
    }
    if (!ok || i >= line.size() || line[i] != ' ') {
      problem("bad labels in: " + std::string(line));
      continue;
    }
    std::string_view value_text = line.substr(i + 1);
    if (const std::size_t space = value_text.find(' '); space != std::string_view::npos) {
      value_text = value_text.substr(0, space);  // a timestamp follows
    }
    const std::optional<double> value = ParseValue(value_text);
    if (!value) {
      problem("bad value in: " + std::string(line));
      continue;
    }
    sample.value = *value;
    const std::string family = FamilyOf(sample.name, out.types);
    if (family != current) {
      if (finished.contains(family)) problem("samples of " + family + " resumed after another family");
      if (!current.empty()) finished.insert(current);
      current = family;
    }
    const auto type = out.types.find(family);
    if (type == out.types.end()) {
      problem("sample " + sample.name + " before its TYPE");
    } else if (type->second == "histogram" && sample.name == family) {
      problem("histogram " + family + " has a bare sample");
    } else if (type->second == "histogram" && sample.name == family + "_bucket" && !sample.labels.contains("le")) {
      problem("bucket of " + family + " without le");
    }
    out.samples.push_back(std::move(sample));
  }
  // Histograms: cumulative buckets ending at +Inf == _count, per label set.
  for (const auto& [family, type] : out.types) {
    if (type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    std::map<std::map<std::string, std::string>, double> counts;
    for (const ParsedSample& sample : out.samples) {
      if (sample.name == family + "_bucket") {
        auto labels = sample.labels;
        const std::string le = labels["le"];
        labels.erase("le");
        const std::optional<double> bound = ParseValue(le);
        if (!bound) {
          out.problems.push_back("bad le=\"" + le + "\" in " + family);
          continue;
        }
        buckets[labels].emplace_back(*bound, sample.value);
      } else if (sample.name == family + "_count") {
        counts[sample.labels] = sample.value;
      }
    }
    for (const auto& [labels, series] : buckets) {
      for (std::size_t k = 1; k < series.size(); ++k) {
        if (series[k].first <= series[k - 1].first) out.problems.push_back(family + ": le bounds not ascending");
        if (series[k].second < series[k - 1].second) out.problems.push_back(family + ": buckets not cumulative");
      }
      if (series.empty() || !std::isinf(series.back().first)) {
        out.problems.push_back(family + ": no le=\"+Inf\" bucket last");
        continue;
      }
      const auto count = counts.find(labels);
      if (count == counts.end()) {
        out.problems.push_back(family + ": a label set without _count");
      } else if (count->second != series.back().second) {
        out.problems.push_back(family + ": le=\"+Inf\" bucket differs from _count");
      }
    }
  }
  return out;
}

}  // namespace courier::prometheus
