#include "exposition.hpp"

#include <cmath>
#include <cstdio>
#include <set>
#include <utility>

#include "prometheus/process_metrics.hpp"
#include "prometheus/text_format.hpp"

namespace courier::metrics {
namespace {

using prometheus::Labels;
using prometheus::MetricType;
using prometheus::TextWriter;

constexpr double kQuantiles[] = {0.5, 0.9, 0.99};
constexpr std::string_view kQuantileNames[] = {"0.5", "0.9", "0.99"};

double Seconds(double nanoseconds) { return nanoseconds / 1e9; }

Labels SeriesLabels(const SeriesView& series) {
  return Labels().Add("service", series.service).Add("process", series.process).Add("stage", series.stage);
}

Value WindowValue(const WindowStats& window) {
  Value out = Value::Object({{"seconds", Value(window.seconds)},
                             {"count", Value(window.count)},
                             {"errors", Value(window.errors)},
                             {"rate", Value(window.rate())},
                             {"error_ratio", Value(window.error_ratio())},
                             {"sum_ns", Value(window.sum_ns)},
                             {"min_ns", Value(window.min_ns)},
                             {"max_ns", Value(window.max_ns)}});
  if (const auto mean = window.mean_ns()) out.Set("mean_ns", Value(*mean));
  static constexpr std::string_view kKeys[] = {"p50_ns", "p90_ns", "p99_ns"};
  for (std::size_t i = 0; i < std::size(kQuantiles); ++i) {
    if (const auto q = window.quantile_ns(kQuantiles[i])) out.Set(kKeys[i], Value(*q));
  }
  return out;
}

}  // namespace

std::string PrometheusText(const StageTable& table, Clock::time_point now) {
  const std::vector<SeriesView> series = table.Snapshot(now);
  const TableCounters counters = table.counters(now);
  const std::size_t reporters = table.Reporters(now).size();
  TextWriter w;

  w.Family("courier_stage_duration_seconds", MetricType::kHistogram,
           "Time jobs spent in a stage, per service, reporting process and stage, since the collector started. "
           "A bucket le=x counts the samples whose reported log bucket lies wholly at or below x (a sample up to "
           "one log bucket, < 25 %, below x may fall in the next bucket; never one above x).");
  for (const SeriesView& s : series) {
    const WindowStats& all = s.windows[kWindowAll];
    w.Histogram("courier_stage_duration_seconds", SeriesLabels(s), kDurationBounds, s.durations,
                Seconds(static_cast<double>(all.sum_ns)));
  }

  w.Family("courier_stage_errors_total", MetricType::kCounter, "Jobs that failed in a stage since the collector started.");
  for (const SeriesView& s : series) {
    w.Sample("courier_stage_errors_total", SeriesLabels(s), s.windows[kWindowAll].errors);
  }

  w.Family("courier_stage_window_mean_seconds", MetricType::kGauge,
           "Mean stage duration over a window: sum over count of every report in it, weighted by counts.");
  for (const SeriesView& s : series) {
    for (std::size_t i = 0; i < kWindows; ++i) {
      if (const auto mean = s.windows[i].mean_ns()) {
        w.Sample("courier_stage_window_mean_seconds", SeriesLabels(s).Add("window", kWindowNames[i]), Seconds(*mean));
      }
    }
  }

  w.Family("courier_stage_window_quantile_seconds", MetricType::kGauge,
           "Stage duration quantiles over a window, from the merged log-bucket histograms.");
  for (const SeriesView& s : series) {
    for (std::size_t i = 0; i < kWindows; ++i) {
      for (std::size_t q = 0; q < std::size(kQuantiles); ++q) {
        if (const auto value = s.windows[i].quantile_ns(kQuantiles[q])) {
          w.Sample("courier_stage_window_quantile_seconds",
                   SeriesLabels(s).Add("window", kWindowNames[i]).Add("quantile", kQuantileNames[q]), Seconds(*value));
        }
      }
    }
  }

  w.Family("courier_stage_window_rate", MetricType::kGauge, "Jobs completing a stage per second over a window.");
  for (const SeriesView& s : series) {
    for (std::size_t i = 0; i < kWindows; ++i) {
      if (s.windows[i].count + s.windows[i].errors == 0 || s.windows[i].seconds <= 0) continue;
      w.Sample("courier_stage_window_rate", SeriesLabels(s).Add("window", kWindowNames[i]), s.windows[i].rate());
    }
  }

  w.Family("courier_stage_window_error_ratio", MetricType::kGauge,
           "Failed jobs over all jobs that reached a stage (errors / (count + errors)) over a window.");
  for (const SeriesView& s : series) {
    for (std::size_t i = 0; i < kWindows; ++i) {
      if (s.windows[i].count + s.windows[i].errors == 0) continue;
      w.Sample("courier_stage_window_error_ratio", SeriesLabels(s).Add("window", kWindowNames[i]),
               s.windows[i].error_ratio());
    }
  }

  w.Family("courier_stage_group_info", MetricType::kGauge,
           "The design's group of each (process, stage) the collector holds (request, response, error, crypto, "
           "load_balancing; other for stages it does not know): always 1, for joins and sums by group.");
  std::set<std::pair<std::string, std::string>> grouped;
  for (const SeriesView& s : series) {
    if (!grouped.emplace(s.process, s.stage).second) continue;
    w.Sample("courier_stage_group_info",
             Labels().Add("process", s.process).Add("stage", s.stage).Add("group", GroupName(s.process, s.stage)),
             std::uint64_t{1});
  }

  w.Single("courier_metrics_reports_total", MetricType::kCounter, "Metrics reports the collector added.",
           counters.reports);
  w.Single("courier_metrics_duplicate_reports_total", MetricType::kCounter, "Metrics reports dropped as duplicates.",
           counters.duplicates);
  w.Single("courier_metrics_series_dropped_total", MetricType::kCounter,
           "Stage entries dropped because the collector holds its maximum number of series.", counters.series_dropped);
  w.Single("courier_metrics_rejected_reports_total", MetricType::kCounter,
           "Metrics reports refused as malformed or implausible (bad process, host, instance or pid).",
           counters.rejected_reports);
  w.Single("courier_metrics_rejected_stages_total", MetricType::kCounter,
           "Stage entries dropped as implausible (names, counts, durations, histograms that do not add up).",
           counters.rejected_stages);
  w.Single("courier_metrics_series", MetricType::kGauge, "(service, process, stage) series held.",
           static_cast<std::uint64_t>(counters.series));
  w.Single("courier_metrics_reporters", MetricType::kGauge, "Processes that sent a report in the last 5 minutes.",
           static_cast<std::uint64_t>(reporters));
  w.Single("courier_metrics_uptime_seconds", MetricType::kGauge, "Seconds since the collector started.",
           static_cast<double>(counters.uptime.count()) / 1000.0);
  prometheus::WriteBuildInfo(w, "courier-metrics");
  prometheus::WriteProcessMetrics(w);
  return w.Take();
}

Value StatsValue(const StageTable& table, Clock::time_point now) {
  const TableCounters counters = table.counters(now);
  Value reporters = Value::Array{};
  for (const ReporterView& reporter : table.Reporters(now)) {
    reporters.Append(Value::Object({{"process", Value(reporter.process)},
                                    {"host", Value(reporter.host)},
                                    {"pid", Value(reporter.pid)},
                                    {"instance", Value(reporter.instance)},
                                    {"reports", Value(reporter.reports)},
                                    {"age_ms", Value(static_cast<std::uint64_t>(reporter.age.count()))}}));
  }
  Value stages = Value::Array{};
  for (const SeriesView& series : table.Snapshot(now)) {
    Value windows = Value::Map{};
    for (std::size_t i = 0; i < kWindows; ++i) windows.Set(kWindowNames[i], WindowValue(series.windows[i]));
    stages.Append(Value::Object({{"service", Value(series.service)},
                                 {"process", Value(series.process)},
                                 {"stage", Value(series.stage)},
                                 {"group", Value(std::string(GroupName(series.process, series.stage)))},
                                 {"windows", std::move(windows)}}));
  }
  return Value::Object({{"uptime_ms", Value(static_cast<std::uint64_t>(counters.uptime.count()))},
                        {"reports", Value(counters.reports)},
                        {"duplicates", Value(counters.duplicates)},
                        {"series_dropped", Value(counters.series_dropped)},
                        {"rejected_reports", Value(counters.rejected_reports)},
                        {"rejected_stages", Value(counters.rejected_stages)},
                        {"reporters", std::move(reporters)},
                        {"stages", std::move(stages)}});
}

}  // namespace courier::metrics
