#include "prometheus/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "courier/version.hpp"

namespace courier::prometheus {
namespace {

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<std::uint64_t> BootTimeSeconds() {
  const std::optional<std::string> stat = ReadFile("/proc/stat");
  if (!stat) return std::nullopt;
  const std::size_t at = stat->find("\nbtime ");
  if (at == std::string::npos) return std::nullopt;
  std::uint64_t value = 0;
  const char* begin = stat->data() + at + 7;
  if (std::from_chars(begin, stat->data() + stat->size(), value).ec != std::errc{}) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> OpenFds() {
  std::error_code error;
  std::uint64_t count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end; it.increment(error)) {
    ++count;
  }
  if (error) return std::nullopt;
  return count > 0 ? count - 1 : 0;  // the iterator's own descriptor on the folder
}

}  // namespace

std::optional<ProcessStats> ParseProcStat(std::string_view stat, long ticks_per_second, long page_bytes,
                                          std::uint64_t boot_time_seconds) {
  // pid (comm) state ppid ...: fields after the last ')' start at field 3 (state).
  const std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0 || page_bytes <= 0) return std::nullopt;
  std::vector<std::string_view> fields;
  std::size_t at = close + 1;
  while (at < stat.size()) {
    while (at < stat.size() && (stat[at] == ' ' || stat[at] == '\n')) ++at;
    const std::size_t end = stat.find_first_of(" \n", at);
    if (at < stat.size()) fields.push_back(stat.substr(at, end == std::string_view::npos ? end : end - at));
    if (end == std::string_view::npos) break;
    at = end;
  }
  // fields[0] is field 3 of proc(5): utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
  auto number = [&](std::size_t field) -> std::optional<std::uint64_t> {
    const std::size_t index = field - 3;
    if (index >= fields.size()) return std::nullopt;
    std::uint64_t value = 0;
    const std::string_view text = fields[index];
    if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc{}) return std::nullopt;
    return value;
  };
  const auto utime = number(14);
  const auto stime = number(15);
  const auto start = number(22);
  const auto vsize = number(23);
  const auto rss = number(24);
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  ProcessStats stats;
  const auto ticks = static_cast<double>(ticks_per_second);
  stats.cpu_seconds = static_cast<double>(*utime + *stime) / ticks;
  stats.resident_bytes = *rss * static_cast<std::uint64_t>(page_bytes);
  stats.virtual_bytes = *vsize;
  stats.start_time_seconds = static_cast<double>(boot_time_seconds) + static_cast<double>(*start) / ticks;
  return stats;
}

std::optional<ProcessStats> ReadProcessStats() {
  const std::optional<std::string> stat = ReadFile("/proc/self/stat");
  const std::optional<std::uint64_t> boot = BootTimeSeconds();
  if (!stat || !boot) return std::nullopt;
  std::optional<ProcessStats> stats = ParseProcStat(*stat, ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE), *boot);
  if (!stats) return std::nullopt;
  stats->open_fds = OpenFds();
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    stats->max_fds = static_cast<std::uint64_t>(limit.rlim_cur);
  }
  return stats;
}

void WriteBuildInfo(TextWriter& writer, std::string_view program) {
  writer.Family("courier_build_info", MetricType::kGauge,
                "Always 1: the program answering and the Courier version and compiler it was built from.");
  writer.Sample("courier_build_info",
                Labels().Add("program", program).Add("version", COURIER_VERSION_STRING).Add("compiler", __VERSION__),
                std::uint64_t{1});
}

void WriteProcessMetrics(TextWriter& writer) {
  const std::optional<ProcessStats> stats = ReadProcessStats();
  if (!stats) return;
  writer.Single("process_cpu_seconds_total", MetricType::kCounter, "Total user and system CPU time spent in seconds.",
                stats->cpu_seconds);
  writer.Single("process_resident_memory_bytes", MetricType::kGauge, "Resident memory size in bytes.",
                stats->resident_bytes);
  writer.Single("process_virtual_memory_bytes", MetricType::kGauge, "Virtual memory size in bytes.",
                stats->virtual_bytes);
  writer.Single("process_start_time_seconds", MetricType::kGauge,
                "Start time of the process since the Unix epoch in seconds.", stats->start_time_seconds);
  if (stats->open_fds) {
    writer.Single("process_open_fds", MetricType::kGauge, "Number of open file descriptors.", *stats->open_fds);
  }
  if (stats->max_fds) {
    writer.Single("process_max_fds", MetricType::kGauge, "Maximum number of open file descriptors.", *stats->max_fds);
  }
}

}  // namespace courier::prometheus
