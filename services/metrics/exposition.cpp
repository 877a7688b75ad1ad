#include "exposition.hpp"

#include <cmath>
#include <cstdio>
#include <set>
#include <utility>

namespace courier::metrics {
namespace {

constexpr double kQuantiles[] = {0.5, 0.9, 0.99};
constexpr std::string_view kQuantileNames[] = {"0.5", "0.9", "0.99"};

std::string Number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.9g", value);
  return buffer;
}

std::string Seconds(double nanoseconds) { return Number(nanoseconds / 1e9); }

class Writer {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels` is already formatted: {service="a",process="b",stage="c"} or empty.
  void Sample(std::string_view name, std::string_view labels, const std::string& value) {
    out_ += name;
    out_ += labels;
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Labels(const SeriesView& series, std::string_view extra = {}) {
  std::string labels = "{service=\"" + EscapeLabel(series.service) + "\",process=\"" + EscapeLabel(series.process) +
                       "\",stage=\"" + EscapeLabel(series.stage) + "\"";
  if (!extra.empty()) {
    labels += ',';
    labels += extra;
  }
  return labels + "}";
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

std::string EscapeLabel(std::string_view value) {
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

std::string PrometheusText(const StageTable& table, Clock::time_point now) {
  const std::vector<SeriesView> series = table.Snapshot(now);
  const TableCounters counters = table.counters(now);
  const std::size_t reporters = table.Reporters(now).size();
  Writer w;

  w.Family("courier_stage_duration_seconds", "summary",
           "Time jobs spent in a stage, per service, reporting process and stage: quantiles over the last minute, "
           "sum and count since the collector started.");
  for (const SeriesView& s : series) {
    const WindowStats& minute = s.windows[kWindow1m];
    for (std::size_t i = 0; i < std::size(kQuantiles); ++i) {
      if (const auto q = minute.quantile_ns(kQuantiles[i])) {
        w.Sample("courier_stage_duration_seconds",
                 Labels(s, "quantile=\"" + std::string(kQuantileNames[i]) + "\""), Seconds(*q));
      }
    }
    const WindowStats& all = s.windows[kWindowAll];
    w.Sample("courier_stage_duration_seconds_sum", Labels(s), Seconds(static_cast<double>(all.sum_ns)));
    w.Sample("courier_stage_duration_seconds_count", Labels(s), std::to_string(all.count));
  }

  w.Family("courier_stage_errors_total", "counter", "Jobs that failed in a stage since the collector started.");
  for (const SeriesView& s : series) {
    w.Sample("courier_stage_errors_total", Labels(s), std::to_string(s.windows[kWindowAll].errors));
  }

  w.Family("courier_stage_window_mean_seconds", "gauge",
           "Mean stage duration over a window: sum over count of every report in it, weighted by counts.");
  for (const SeriesView& s : series) {
    for (std::size_t i = 0; i < kWindows; ++i) {
      if (const auto mean = s.windows[i].mean_ns()) {
        w.Sample("courier_stage_window_mean_seconds",
                 Labels(s, "window=\"" + std::string(kWindowNames[i]) + "\""), Seconds(*mean));
      }
    }
  }

  w.Family("courier_stage_window_quantile_seconds", "gauge",
           "Stage duration quantiles over a window, from the merged log-bucket histograms.");
  for (const SeriesView& s : series) {
    for (std::size_t i = 0; i < kWindows; ++i) {
      for (std::size_t q = 0; q < std::size(kQuantiles); ++q) {
        if (const auto value = s.windows[i].quantile_ns(kQuantiles[q])) {
          w.Sample("courier_stage_window_quantile_seconds",
                   Labels(s, "window=\"" + std::string(kWindowNames[i]) + "\",quantile=\"" +
                                 std::string(kQuantileNames[q]) + "\""),
                   Seconds(*value));
        }
      }
    }
  }

  w.Family("courier_stage_window_rate", "gauge", "Jobs completing a stage per second over a window.");
  for (const SeriesView& s : series) {
    for (std::size_t i = 0; i < kWindows; ++i) {
      if (s.windows[i].count + s.windows[i].errors == 0 || s.windows[i].seconds <= 0) continue;
      w.Sample("courier_stage_window_rate", Labels(s, "window=\"" + std::string(kWindowNames[i]) + "\""),
               Number(s.windows[i].rate()));
    }
  }

  w.Family("courier_stage_window_error_ratio", "gauge",
           "Failed jobs over all jobs that reached a stage (errors / (count + errors)) over a window.");
  for (const SeriesView& s : series) {
    for (std::size_t i = 0; i < kWindows; ++i) {
      if (s.windows[i].count + s.windows[i].errors == 0) continue;
      w.Sample("courier_stage_window_error_ratio", Labels(s, "window=\"" + std::string(kWindowNames[i]) + "\""),
               Number(s.windows[i].error_ratio()));
    }
  }

  w.Family("courier_stage_group_info", "gauge",
           "The design's group of each (process, stage) the collector holds (request, response, error, crypto, "
           "load_balancing; other for stages it does not know): always 1, for joins and sums by group.");
  std::set<std::pair<std::string, std::string>> grouped;
  for (const SeriesView& s : series) {
    if (!grouped.emplace(s.process, s.stage).second) continue;
    w.Sample("courier_stage_group_info",
             "{process=\"" + EscapeLabel(s.process) + "\",stage=\"" + EscapeLabel(s.stage) + "\",group=\"" +
                 std::string(GroupName(s.process, s.stage)) + "\"}",
             "1");
  }

  w.Family("courier_metrics_reports_total", "counter", "Metrics reports the collector added.");
  w.Sample("courier_metrics_reports_total", "", std::to_string(counters.reports));
  w.Family("courier_metrics_duplicate_reports_total", "counter", "Metrics reports dropped as duplicates.");
  w.Sample("courier_metrics_duplicate_reports_total", "", std::to_string(counters.duplicates));
  w.Family("courier_metrics_series_dropped_total", "counter",
           "Stage entries dropped because the collector holds its maximum number of series.");
  w.Sample("courier_metrics_series_dropped_total", "", std::to_string(counters.series_dropped));
  w.Family("courier_metrics_rejected_reports_total", "counter",
           "Metrics reports refused as malformed or implausible (bad process, host, instance or pid).");
  w.Sample("courier_metrics_rejected_reports_total", "", std::to_string(counters.rejected_reports));
  w.Family("courier_metrics_rejected_stages_total", "counter",
           "Stage entries dropped as implausible (names, counts, durations, histograms that do not add up).");
  w.Sample("courier_metrics_rejected_stages_total", "", std::to_string(counters.rejected_stages));
  w.Family("courier_metrics_series", "gauge", "(service, process, stage) series held.");
  w.Sample("courier_metrics_series", "", std::to_string(counters.series));
  w.Family("courier_metrics_reporters", "gauge", "Processes that sent a report in the last 5 minutes.");
  w.Sample("courier_metrics_reporters", "", std::to_string(reporters));
  w.Family("courier_metrics_uptime_seconds", "gauge", "Seconds since the collector started.");
  w.Sample("courier_metrics_uptime_seconds", "", Number(static_cast<double>(counters.uptime.count()) / 1000.0));
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
