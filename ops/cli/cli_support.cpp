#include "cli_support.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace courier::cli {

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnavailable: return kExitUnavailable;
    case ErrorCode::kNotFound: return kExitNotFound;
    case ErrorCode::kConfig: return kExitUsage;
    default: return kExitJobErrors;
  }
}

std::chrono::milliseconds ParseDuration(std::string_view text, std::chrono::milliseconds max) {
  const std::string original(text);
  auto invalid = [&]() -> std::invalid_argument {
    return std::invalid_argument("invalid duration \"" + original + "\" (use e.g. 250ms, 3s, 1.5s, 2m, 1h)");
  };
  std::size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) throw invalid();
  double number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (ec != std::errc{} || end != text.data() + digits) throw invalid();
  const std::string_view unit = text.substr(digits);
  double ms = 0;
  if (unit.empty() || unit == "ms") {
    ms = number;
  } else if (unit == "s") {
    ms = number * 1000;
  } else if (unit == "m") {
    ms = number * 60'000;
  } else if (unit == "h") {
    ms = number * 3'600'000;
  } else if (unit == "d") {
    ms = number * 86'400'000;
  } else {
    throw invalid();
  }
  if (!(ms >= 1) || ms > static_cast<double>(max.count())) {
    throw std::invalid_argument("duration \"" + original + "\" must be between 1ms and " +
                                std::to_string(max.count()) + "ms");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

// ---- LatencyHistogram ----------------------------------------------------------------------

std::size_t LatencyHistogram::Bucket(std::uint64_t value) {
  if (value < kLinear) return static_cast<std::size_t>(value);
  const int width = std::bit_width(value);        // >= kSubBits + 2
  const int shift = width - (kSubBits + 1);       // >= 1
  const std::uint64_t top = value >> shift;       // in [128, 255]
  const std::size_t bucket = kLinear + static_cast<std::size_t>(shift - 1) * (std::size_t{1} << kSubBits) +
                             static_cast<std::size_t>(top - (std::uint64_t{1} << kSubBits));
  return std::min(bucket, kBuckets - 1);
}

std::uint64_t LatencyHistogram::Representative(std::size_t bucket) {
  if (bucket < kLinear) return bucket;
  const std::size_t offset = bucket - kLinear;
  const int shift = static_cast<int>(offset >> kSubBits) + 1;
  const std::uint64_t top = (offset & ((std::size_t{1} << kSubBits) - 1)) + (std::uint64_t{1} << kSubBits);
  const std::uint64_t low = top << shift;
  return low + ((std::uint64_t{1} << shift) >> 1);  // the middle of [low, low + 2^shift)
}

void LatencyHistogram::Add(std::chrono::microseconds latency) {
  const std::uint64_t value = latency.count() < 0 ? 0 : static_cast<std::uint64_t>(latency.count());
  ++buckets_[Bucket(value)];
  min_ = count_ == 0 ? value : std::min(min_, value);
  max_ = std::max(max_, value);
  ++count_;
}

std::chrono::microseconds LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return std::chrono::microseconds(0);
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t bucket = 0; bucket < kBuckets; ++bucket) {
    seen += buckets_[bucket];
    if (seen >= rank) {
      const std::uint64_t value = std::clamp(Representative(bucket), min_, max_);
      return std::chrono::microseconds(static_cast<std::int64_t>(value));
    }
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(max_));
}

// ---- Summary -------------------------------------------------------------------------------

void Summary::AddOk(std::chrono::microseconds latency) {
  ++ok;
  this->latency.Add(latency);
}

void Summary::AddError(ErrorCode code, std::chrono::microseconds latency) {
  ++errors[std::string(ToString(code))];
  this->latency.Add(latency);
}

std::uint64_t Summary::answered() const {
  std::uint64_t total = ok;
  for (const auto& [code, n] : errors) total += n;
  return total;
}

double Summary::jobs_per_second() const {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  return seconds > 0 ? static_cast<double>(answered()) / seconds : 0.0;
}

namespace {

double Ms(std::chrono::microseconds value) {
  return std::round(static_cast<double>(value.count())) / 1000.0;
}

}  // namespace

std::string Summary::ToJson() const {
  nlohmann::ordered_json json;
  json["sent"] = sent;
  json["ok"] = ok;
  json["errors"] = nlohmann::ordered_json::object();
  for (const auto& [code, n] : errors) json["errors"][code] = n;
  json["jobs_per_s"] = std::round(jobs_per_second() * 10.0) / 10.0;
  json["latency_ms"] = {
      {"p50", Ms(latency.Percentile(0.50))},
      {"p90", Ms(latency.Percentile(0.90))},
      {"p99", Ms(latency.Percentile(0.99))},
      {"max", Ms(latency.max())},
  };
  if (interrupted) {
    json["interrupted"] = true;
    json["unanswered"] = sent - std::min(sent, answered());
  }
  return json.dump();
}

std::string FormatMs(std::chrono::microseconds value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", static_cast<double>(value.count()) / 1000.0);
  return buffer;
}

std::string Summary::ToText() const {
  std::string out;
  char line[256];
  const std::uint64_t failed = answered() - ok;
  std::snprintf(line, sizeof line, "sent %llu  ok %llu  errors %llu", static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(ok), static_cast<unsigned long long>(failed));
  out += line;
  if (!errors.empty()) {
    out += " (";
    bool first = true;
    for (const auto& [code, n] : errors) {
      if (!first) out += ", ";
      first = false;
      out += code + " " + std::to_string(n);
    }
    out += ")";
  }
  out += "\n";
  std::snprintf(line, sizeof line, "%llu jobs in %.3f s: %.1f jobs/s\n", static_cast<unsigned long long>(answered()),
                std::chrono::duration<double>(elapsed).count(), jobs_per_second());
  out += line;
  out += "latency ms: p50 " + FormatMs(latency.Percentile(0.5)) + "  p90 " + FormatMs(latency.Percentile(0.9)) +
         "  p99 " + FormatMs(latency.Percentile(0.99)) + "  max " + FormatMs(latency.max()) + "\n";
  if (interrupted) {
    out += "interrupted (Ctrl-C): " + std::to_string(sent - std::min(sent, answered())) + " jobs unanswered\n";
  }
  return out;
}

int Summary::ExitCode() const {
  if (errors.empty()) return kExitOk;
  if (errors.count(std::string(ToString(ErrorCode::kUnavailable))) != 0) return kExitUnavailable;
  return kExitJobErrors;
}

// ---- tables and progress -------------------------------------------------------------------

namespace {

bool IsNumber(const std::string& cell) {
  if (cell.empty()) return false;
  return std::all_of(cell.begin(), cell.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

// Returns: whether code point `c` takes two columns (East Asian Wide or Fullwidth, and the
// emoji blocks), after Unicode's EastAsianWidth.txt, coarsely: whole blocks, no exceptions.
bool IsWide(char32_t c) {
  static constexpr std::pair<char32_t, char32_t> kWide[] = {
      {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},   {0x2614, 0x2615},
      {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
      {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},
      {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x18AFF}, {0x1B000, 0x1B2FF}, {0x1F300, 0x1F64F},
      {0x1F680, 0x1F6FF}, {0x1F900, 0x1F9FF}, {0x1FA70, 0x1FAFF}, {0x20000, 0x3FFFD},
  };
  for (const auto& [low, high] : kWide) {
    if (c < low) return false;
    if (c <= high) return true;
  }
  return false;
}

// Returns: whether `c` takes no column: combining marks, zero-width spaces and joiners,
// variation selectors.
bool IsZeroWidth(char32_t c) {
  return (c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF) || (c >= 0x1DC0 && c <= 0x1DFF) ||
         (c >= 0x200B && c <= 0x200F) || (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE00 && c <= 0xFE0F) ||
         (c >= 0xFE20 && c <= 0xFE2F) || c == 0x2060 || c == 0xFEFF || (c >= 0xE0100 && c <= 0xE01EF);
}

}  // namespace

std::size_t DisplayWidth(std::string_view text) {
  std::size_t width = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    char32_t c = length == 1 ? lead : length == 2 ? (lead & 0x1F) : length == 3 ? (lead & 0x0F) : (lead & 0x07);
    bool valid = length != 0 && i + length <= text.size();
    for (std::size_t k = 1; valid && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      valid = (next & 0xC0) == 0x80;
      c = (c << 6) | (next & 0x3F);
    }
    if (!valid) {  // a stray or truncated byte: one column, as most terminals show U+FFFD
      ++width;
      ++i;
      continue;
    }
    i += length;
    width += IsZeroWidth(c) ? 0 : IsWide(c) ? 2 : 1;
  }
  return width;
}

void OrderQuantiles(std::span<std::optional<double>> ascending, std::optional<double> max) {
  std::optional<double> floor;
  for (std::optional<double>& value : ascending) {
    if (!value) continue;
    if (max) value = std::min(*value, *max);
    if (floor) value = std::max(*value, *floor);
    floor = value;
  }
}

std::string RenderTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  const std::size_t columns = header.size();
  std::vector<std::size_t> width(columns);
  std::vector<bool> numeric(columns, !rows.empty());
  for (std::size_t c = 0; c < columns; ++c) width[c] = DisplayWidth(header[c]);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < columns; ++c) {
      const std::string cell = c < row.size() ? row[c] : std::string();
      width[c] = std::max(width[c], DisplayWidth(cell));
      if (!IsNumber(cell)) numeric[c] = false;
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < columns; ++c) {
      const std::string cell = c < cells.size() ? cells[c] : std::string();
      const std::string pad(width[c] - DisplayWidth(cell), ' ');
      if (c != 0) out += "  ";
      if (numeric[c]) {
        out += pad + cell;
      } else {
        out += cell;
        if (c + 1 != columns) out += pad;
      }
    }
    out += "\n";
    return out;
  };
  std::string out = line(header);
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string ProgressLine(std::uint64_t done, std::uint64_t total, std::uint64_t ok, std::uint64_t errors,
                         double seconds, std::size_t width) {
  char tail[160];
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  std::snprintf(tail, sizeof tail, " %llu/%llu  ok %llu  errors %llu  %.0f jobs/s", static_cast<unsigned long long>(done),
                static_cast<unsigned long long>(total), static_cast<unsigned long long>(ok),
                static_cast<unsigned long long>(errors), rate);
  const std::size_t tail_size = std::string_view(tail).size();
  std::size_t bar = width > tail_size + 12 ? std::min<std::size_t>(40, width - tail_size - 2) : 10;
  const std::size_t filled = total == 0 ? bar : static_cast<std::size_t>(static_cast<double>(bar) * static_cast<double>(std::min(done, total)) / static_cast<double>(total));
  std::string out = "[" + std::string(filled, '#') + std::string(bar - filled, '.') + "]" + tail;
  if (out.size() > width && width > 0) out.resize(width);
  return out;
}

namespace {

// Levenshtein distance, one row at a time.
std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string NearestName(std::string_view name, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_distance = std::min<std::size_t>(2, name.size() / 2) + 1;
  for (const std::string& candidate : known) {
    const std::size_t distance = EditDistance(name, candidate);
    if (distance > 0 && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace courier::cli
