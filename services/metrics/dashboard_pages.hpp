// dashboard_pages.hpp — the dashboard's pages as HTML, rendered here so that every page is
// useful before (or without) any script: the overview's tables, a service's workers and
// stages, the error groups and reports, a stored job. The scripts under dashboard/ only
// add live updates, charts and the buttons that change something (replay, reveal).
//
// Every value that came from the network is escaped (EscapeHtml) before it is written.
// Thread-safety: plain functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "courier/value.hpp"
#include "stage_table.hpp"

namespace courier::metrics {

struct PageContext {
  std::string token;  // for the <meta name="courier-token"> state-changing requests carry
};

// Returns: `text` with & < > " ' escaped.
std::string EscapeHtml(std::string_view text);
// Returns: "850ns", "12.3µs", "4.56ms", "1.20s".
std::string FormatNanos(double nanoseconds);
// Returns: "3d 4h", "2h 5m", "3m 12s", "42s".
std::string FormatUptime(std::uint64_t milliseconds);
// Returns: "0", "0.4", "12.3", "1234".
std::string FormatRate(double per_second);
// Returns: "0%", "0.12%", "5.0%".
std::string FormatPercent(double ratio);

// `overview` is ClusterView::Overview().
std::string OverviewPage(const PageContext& context, const Value& overview);
// `workers` is ClusterView::Workers(service); `stages` the table's rows for the service.
std::string ServicePage(const PageContext& context, const std::string& service, const Value& workers,
                        const std::vector<SeriesView>& stages);
// What the errors page shows: the filter as asked, the sink's answers, or why there are none.
struct ErrorsView {
  std::string service, code, since;  // as typed into the form
  std::optional<Value> groups;       // {"groups": [...]}
  std::optional<Value> reports;      // {"reports": [...], "stats": {...}}
  std::optional<Value> detail;       // ClusterView::Error(id, false)
  std::string problem;
};
std::string ErrorsPage(const PageContext& context, const ErrorsView& view);
struct JobsView {
  std::string id, service, state;
  std::optional<Value> job;   // ClusterView::Job
  std::optional<Value> jobs;  // ClusterView::Jobs
  std::string problem;
};
std::string JobsPage(const PageContext& context, const JobsView& view);
std::string LoginPage(std::string_view problem);
// A plain page for a refusal or a failure (404, 401, 500...).
std::string MessagePage(std::string_view title, std::string_view message);

}  // namespace courier::metrics
