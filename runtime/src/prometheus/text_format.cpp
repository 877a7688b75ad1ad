#include "prometheus/text_format.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace courier::prometheus {

std::string_view ToString(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kUntyped:
      break;
  }
  return "untyped";
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[40];
  // The fewest digits that read back to the same double: 0.1 stays "0.1".
  for (int digits = 15; digits <= 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

Labels& Labels::Add(std::string_view name, std::string_view value) {
  if (text_.empty()) {
    text_ = "{";
  } else {
    text_.back() = ',';  // the closing brace becomes a separator
  }
  text_ += name;
  text_ += "=\"";
  text_ += EscapeLabelValue(value);
  text_ += "\"}";
  return *this;
}

Labels Labels::With(std::string_view name, std::string_view value) const {
  Labels copy = *this;
  copy.Add(name, value);
  return copy;
}

void TextWriter::Family(std::string_view name, MetricType type, std::string_view help) {
  if (!families_.emplace(name).second) {
    throw std::logic_error("metric family " + std::string(name) + " written twice on one page");
  }
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += EscapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += ToString(type);
  out_ += '\n';
}

void TextWriter::Sample(std::string_view name, const Labels& labels, std::uint64_t value) {
  out_ += name;
  out_ += labels.text();
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void TextWriter::Sample(std::string_view name, const Labels& labels, double value) {
  out_ += name;
  out_ += labels.text();
  out_ += ' ';
  out_ += FormatNumber(value);
  out_ += '\n';
}

void TextWriter::Histogram(std::string_view name, const Labels& labels, std::span<const double> bounds,
                           std::span<const std::uint64_t> counts, double sum) {
  if (counts.size() != bounds.size() + 1) {
    throw std::logic_error("histogram " + std::string(name) + ": one count per bound plus one for +Inf expected");
  }
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    Sample(bucket, labels.With("le", FormatNumber(bounds[i])), cumulative);
  }
  cumulative += counts.back();
  Sample(bucket, labels.With("le", "+Inf"), cumulative);
  Sample(std::string(name) + "_sum", labels, sum);
  Sample(std::string(name) + "_count", labels, cumulative);
}

std::string TextWriter::Take() {
  families_.clear();
  return std::move(out_);
}

}  // namespace courier::prometheus
