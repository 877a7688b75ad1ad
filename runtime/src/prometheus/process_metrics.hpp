// process_metrics.hpp — the families every Courier /metrics page ends with: what program
// and version answers (courier_build_info) and the standard process_* families, read from
// /proc/self as Prometheus's own clients do:
//
//   courier_build_info{program,version,compiler} 1   gauge
//   process_cpu_seconds_total                        counter: user + system CPU time
//   process_resident_memory_bytes                    gauge
//   process_virtual_memory_bytes                     gauge
//   process_open_fds, process_max_fds                gauges
//   process_start_time_seconds                       gauge: Unix time the process started
//
// A family whose source cannot be read (no /proc) is left out rather than written as 0.
// Thread-safety: plain functions (they read /proc each call).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "prometheus/text_format.hpp"

namespace courier::prometheus {

struct ProcessStats {
  double cpu_seconds = 0;
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  double start_time_seconds = 0;  // Unix time
  std::optional<std::uint64_t> open_fds;
  std::optional<std::uint64_t> max_fds;
};

// Returns: this process's figures, or std::nullopt when /proc/self/stat cannot be read.
std::optional<ProcessStats> ReadProcessStats();

// Parses the text of /proc/PID/stat (the command may hold spaces and parentheses) with the
// machine's clock tick, page size and boot time (/proc/stat btime).
// Returns: the figures, or std::nullopt if the text is not a stat line.
std::optional<ProcessStats> ParseProcStat(std::string_view stat, long ticks_per_second, long page_bytes,
                                          std::uint64_t boot_time_seconds);

// Writes courier_build_info for `program` ("courier-broker", ...).
void WriteBuildInfo(TextWriter& writer, std::string_view program);
// Writes the process_* families above.
void WriteProcessMetrics(TextWriter& writer);

}  // namespace courier::prometheus
