// exposition.hpp — the collector's aggregates in the two shapes it serves:
//
// PrometheusText: the Prometheus text exposition format 0.0.4 (GET /metrics). Families,
// each with HELP and TYPE, every stage series labelled service="...", process="..." (the
// reporting process: client, broker, worker) and stage="...":
//   courier_stage_duration_seconds          histogram (_bucket{le}, _sum, _count) since the
//                                           collector started; buckets kDurationBounds (10 µs ..
//                                           10 s), what a bucket counts: stage_table.hpp
//   courier_stage_errors_total              counter: jobs that failed in the stage
//   courier_stage_window_mean_seconds       gauge, window="10s|1m|5m|all": Σsum/Σcount
//   courier_stage_window_quantile_seconds   gauge, window, quantile="0.5|0.9|0.99"
//   courier_stage_window_rate               gauge, window: completions per second
//   courier_stage_window_error_ratio        gauge, window: errors / (count + errors)
//   courier_metrics_reports_total, courier_metrics_duplicate_reports_total,
//   courier_metrics_series_dropped_total    counters of the collector itself
//   courier_metrics_series, courier_metrics_reporters, courier_metrics_uptime_seconds  gauges
//                                           (courier_metrics_series counts (service, process, stage))
//   courier_build_info{program="courier-metrics",...}, process_*   (prometheus/process_metrics.hpp)
// Windows with no samples are left out rather than written as NaN.
//
// StatsValue: the same table as a Value (GET /metrics.json, and the {"op": "stats"} query
// `courier metrics` prints):
//   {"uptime_ms", "reports", "duplicates", "series_dropped",
//    "reporters": [{"process", "host", "pid", "instance", "reports", "age_ms"}],
//    "stages": [{"service", "process", "stage", "windows": {"10s"|"1m"|"5m"|"all":
//        {"seconds", "count", "errors", "rate", "error_ratio", "sum_ns", "min_ns", "max_ns",
//         "mean_ns"?, "p50_ns"?, "p90_ns"?, "p99_ns"?}}}]}
// (mean and percentiles are absent when the window has no samples or no histogram; rows
// in StageTable::Snapshot order: service, then process, then stage in pipeline order).
// Thread-safety: plain functions over a thread-safe table.
#pragma once

#include <string>
#include <string_view>

#include "courier/value.hpp"
#include "stage_table.hpp"

namespace courier::metrics {

std::string PrometheusText(const StageTable& table, Clock::time_point now);
Value StatsValue(const StageTable& table, Clock::time_point now);

}  // namespace courier::metrics
