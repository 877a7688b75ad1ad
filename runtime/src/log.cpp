#include "courier/log.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include <spdlog/fmt/fmt.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "courier/config.hpp"
#include "courier/error.hpp"
#include "utf8.hpp"

namespace courier {
namespace {

// Our names, not spdlog's: spdlog prints "warning" and parses unknown names as "off",
// which would silently disable logging on a typo.
constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 7> kLevels{{
    {"trace", spdlog::level::trace},
    {"debug", spdlog::level::debug},
    {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},
    {"error", spdlog::level::err},
    {"critical", spdlog::level::critical},
    {"off", spdlog::level::off},
}};

constexpr std::string_view kTextPattern = "[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v";

std::optional<spdlog::level::level_enum> ParseLevel(std::string_view name) {
  for (const auto& [level_name, level] : kLevels) {
    if (level_name == name) return level;
  }
  return std::nullopt;
}

std::string_view LevelName(spdlog::level::level_enum level) {
  for (const auto& [level_name, value] : kLevels) {
    if (value == level) return level_name;
  }
  return "unknown";
}

void Append(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

// Appends `text` as the body of a JSON string. Log messages carry hostile input (peer
// names, payload fragments), so every line must stay one valid JSON object: quotes,
// backslashes and control characters are escaped and malformed UTF-8 becomes U+FFFD.
void AppendJsonEscaped(spdlog::memory_buf_t& dest, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = detail::Utf8SequenceLength(text, i);
      if (length == 0) {
        Append(dest, "\\ufffd");
        ++i;
      } else {
        Append(dest, text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"': Append(dest, "\\\""); break;
      case '\\': Append(dest, "\\\\"); break;
      case '\b': Append(dest, "\\b"); break;
      case '\f': Append(dest, "\\f"); break;
      case '\n': Append(dest, "\\n"); break;
      case '\r': Append(dest, "\\r"); break;
      case '\t': Append(dest, "\\t"); break;
      default:
        if (c < 0x20 || c == 0x7F) {
          const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          dest.append(escape, escape + sizeof escape);
        } else {
          dest.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
}

// One JSON object per line: {"ts":"2024-05-01T12:00:00.123Z","level":"info",
// "logger":"broker","msg":"..."}. UTC so lines from several hosts sort together.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using std::chrono::duration_cast;
    const auto since_epoch = msg.time.time_since_epoch();
    const auto seconds = duration_cast<std::chrono::seconds>(since_epoch);
    const auto millis = duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
    const std::time_t whole = static_cast<std::time_t>(seconds.count());
    std::tm utc{};
    gmtime_r(&whole, &utc);
    fmt::format_to(std::back_inserter(dest),
                   "{{\"ts\":\"{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z\",\"level\":\"",
                   utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                   utc.tm_sec, static_cast<int>(millis.count()));
    Append(dest, LevelName(msg.level));
    Append(dest, "\",\"logger\":\"");
    AppendJsonEscaped(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    Append(dest, "\",\"msg\":\"");
    AppendJsonEscaped(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    Append(dest, "\"}\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::string AllowedLevels() {
  std::string names;
  for (const auto& [level_name, level] : kLevels) {
    if (!names.empty()) names += ", ";
    names += '"';
    names += level_name;
    names += '"';
  }
  return names;
}

}  // namespace

LogOptions ReadLogOptions(const ConfigSection& section, std::string name) {
  LogOptions options;
  options.level = section.GetEnum("level", options.level,
                                  {"trace", "debug", "info", "warn", "error", "critical", "off"});
  options.format = section.GetEnum("format", options.format, {"text", "json"});
  options.name = std::move(name);
  section.RejectUnknownKeys();
  return options;
}

void ConfigureLogging(const LogOptions& options) {
  const std::optional<spdlog::level::level_enum> level = ParseLevel(options.level);
  if (!level) {
    throw Error(ErrorCode::kConfig, "log.level: expected one of " + AllowedLevels() + ", got \"" +
                                        options.level + "\"");
  }
  std::shared_ptr<spdlog::sinks::sink> sink;
  std::unique_ptr<spdlog::formatter> formatter;
  if (options.format == "text") {
    // The colour sink colours only when stderr is a terminal.
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    formatter = std::make_unique<spdlog::pattern_formatter>(std::string(kTextPattern));
  } else if (options.format == "json") {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    formatter = std::make_unique<JsonFormatter>();
  } else {
    throw Error(ErrorCode::kConfig,
                "log.format: expected one of \"text\", \"json\", got \"" + options.format + "\"");
  }
  sink->set_formatter(std::move(formatter));
  auto logger = std::make_shared<spdlog::logger>(options.name, std::move(sink));
  logger->set_level(*level);
  // Replaces any earlier default (and its registry entry), so configuring twice is safe.
  spdlog::set_default_logger(std::move(logger));
}

RateLimiter::RateLimiter(std::size_t burst, std::chrono::milliseconds period)
    : burst_(burst), period_(period) {}

bool RateLimiter::Allow(std::chrono::steady_clock::time_point now) {
  // A fixed window opened by the first event after the previous one expired. While nothing
  // has been allowed yet (used_ == 0) re-opening at `now` is harmless, which also covers the
  // first call without needing a separate "started" flag.
  if (used_ == 0 || now - window_start_ >= period_) {
    window_start_ = now;
    used_ = 0;
  }
  if (used_ < burst_) {
    ++used_;
    return true;
  }
  ++suppressed_;
  return false;
}

std::size_t RateLimiter::TakeSuppressed() { return std::exchange(suppressed_, 0); }

}  // namespace courier
