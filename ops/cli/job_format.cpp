#include "job_format.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "cli_support.hpp"
#include "courier/error.hpp"

namespace courier::cli {

std::string FormatUnixMs(std::uint64_t unix_ms) {
  if (unix_ms == 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  if (::gmtime_r(&seconds, &utc) == nullptr) return std::to_string(unix_ms);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<unsigned>(unix_ms % 1000));
  return buffer;
}

std::string FormatAge(std::uint64_t since_ms, std::uint64_t now_ms) {
  if (since_ms == 0) return "-";
  const std::uint64_t ms = now_ms > since_ms ? now_ms - since_ms : 0;
  const std::uint64_t s = ms / 1000;
  if (s == 0) return std::to_string(ms) + "ms";
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  if (s < 86400) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  return std::to_string(s / 86400) + "d" + std::to_string(s % 86400 / 3600) + "h";
}

Value JobStatusJson(const JobStatus& status) {
  Value out = Value::Object({{"id", status.id.Hex()},
                             {"service", status.service},
                             {"state", ToString(status.state)},
                             {"attempt", status.attempt},
                             {"max_attempts", status.max_attempts},
                             {"worker", status.worker},
                             {"since_ms", status.since_ms},
                             {"expires_ms", status.expires_ms},
                             {"durable", status.durable},
                             {"broker", status.broker}});
  if (status.error) {
    out.Set("error", Value::Object({{"code", ToString(status.error->code())}, {"message", status.error->what()}}));
  }
  if (status.result) out.Set("result", *status.result);
  return out;
}

std::string JobStatusText(const JobStatus& status, std::uint64_t now_ms) {
  std::string out;
  auto line = [&out](std::string_view key, const std::string& value) {
    out += key;
    out.append(key.size() < 9 ? 9 - key.size() : 1, ' ');
    out += value;
    out += '\n';
  };
  line("job", status.id.Hex());
  line("service", status.service);
  line("state", std::string(ToString(status.state)) + (status.durable ? "" : " (memory: lost if the broker stops)"));
  line("attempt", std::to_string(status.attempt) + "/" + std::to_string(status.max_attempts));
  if (status.state == JobState::kRunning) line("worker", status.worker.empty() ? "-" : status.worker);
  line("since", FormatUnixMs(status.since_ms) + " (" + FormatAge(status.since_ms, now_ms) + " ago)");
  if (status.expires_ms != 0) line("expires", FormatUnixMs(status.expires_ms));
  line("broker", status.broker);
  if (status.error) {
    line("error", std::string(ToString(status.error->code())) + ": " + status.error->what());
  }
  if (status.result) line("result", ToJson(*status.result));
  return out;
}

std::vector<std::string> JobsTableHeader() { return {"ID", "SERVICE", "STATE", "ATTEMPT", "SINCE", "BROKER"}; }

std::vector<std::string> JobsTableRow(const JobStatus& status, std::uint64_t now_ms) {
  return {status.id.Hex(),
          status.service,
          std::string(ToString(status.state)),
          std::to_string(status.attempt) + "/" + std::to_string(status.max_attempts),
          FormatAge(status.since_ms, now_ms),
          status.broker};
}

int JobExitCode(const JobStatus& status) {
  switch (status.state) {
    case JobState::kDone: return kExitOk;
    case JobState::kFailed:
    case JobState::kDead: return kExitJobErrors;
    case JobState::kQueued:
    case JobState::kRunning: break;
  }
  return kExitPending;
}

std::chrono::milliseconds ParseWait(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds(0);
  const bool bare = !text.empty() && text.find_first_not_of("0123456789.") == std::string_view::npos;
  return ParseDuration(bare ? std::string(text) + "s" : std::string(text), std::chrono::hours(24));
}

}  // namespace courier::cli
