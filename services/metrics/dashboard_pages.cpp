#include "dashboard_pages.hpp"

#include <time.h>

#include <cmath>
#include <cstdio>

#include "wire/stages.hpp"

namespace courier::metrics {
namespace {

std::optional<double> Num(const Value& map, std::string_view key) {
  const Value* field = map.IsMap() ? map.Find(key) : nullptr;
  if (field == nullptr || !field->IsNumber()) return std::nullopt;
  return field->AsDouble();
}

bool Flag(const Value& map, std::string_view key) {
  const Value* field = map.IsMap() ? map.Find(key) : nullptr;
  return field != nullptr && field->type() == Value::Type::kBool && field->AsBool();
}

const Value::Array& Rows(const Value& value, std::string_view key) {
  static const Value::Array kEmpty;
  if (value.IsArray()) return value.AsArray();
  const Value* field = value.IsMap() ? value.Find(key) : nullptr;
  return field != nullptr && field->IsArray() ? field->AsArray() : kEmpty;
}

std::string Time(std::uint64_t unix_ms) {
  if (unix_ms == 0) return "-";
  const time_t seconds = static_cast<time_t>(unix_ms / 1000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &utc);
  return buffer;
}

std::string TimeTag(std::uint64_t unix_ms) {
  return "<time data-ms=\"" + std::to_string(unix_ms) + "\">" + Time(unix_ms) + " UTC</time>";
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

// Cells are HTML already; the header names are plain text.
std::string Table(std::string_view id, const std::vector<std::string>& headers,
                  const std::vector<std::vector<std::string>>& rows, std::string_view empty) {
  std::string out = "<table id=\"" + std::string(id) + "\"><thead><tr>";
  for (const std::string& header : headers) out += "<th scope=\"col\">" + EscapeHtml(header) + "</th>";
  out += "</tr></thead><tbody>";
  if (rows.empty()) {
    out += "<tr class=\"empty\"><td colspan=\"" + std::to_string(headers.size()) + "\">" + EscapeHtml(empty) + "</td></tr>";
  }
  for (const auto& row : rows) {
    out += "<tr>";
    for (const std::string& cell : row) out += "<td>" + cell + "</td>";
    out += "</tr>";
  }
  return out + "</tbody></table>";
}

std::string Layout(const PageContext& context, std::string_view page, std::string_view title, const std::string& main,
                   std::string_view script = {}) {
  auto link = [&](std::string_view href, std::string_view name, std::string_view key) {
    return "<a href=\"" + std::string(href) + "\"" + (key == page ? " aria-current=\"page\"" : "") + ">" +
           std::string(name) + "</a>";
  };
  std::string out =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>" + EscapeHtml(title) + " · Courier</title>"
      "<meta name=\"courier-token\" content=\"" + EscapeHtml(context.token) + "\">"
      "<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/static/dashboard.css\">";
  if (!script.empty()) out += "<script type=\"module\" src=\"/static/" + std::string(script) + "\"></script>";
  out += "</head><body data-page=\"" + std::string(page) + "\"><header><a class=\"brand\" href=\"/\">Courier</a><nav>" +
         link("/", "Overview", "overview") + link("/errors", "Errors", "errors") + link("/jobs", "Jobs", "jobs") +
         "</nav><span id=\"live\" class=\"live\" hidden></span></header><main>" + main + "</main></body></html>\n";
  return out;
}

std::string Badge(std::string_view text, std::string_view kind) {
  return "<span class=\"badge " + std::string(kind) + "\">" + EscapeHtml(text) + "</span>";
}

std::string Number(double value) { return "<span class=\"num\">" + EscapeHtml(FormatRate(value)) + "</span>"; }

}  // namespace

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string FormatNanos(double ns) {
  char buffer[32];
  if (!std::isfinite(ns) || ns < 0) return "-";
  if (ns < 1e3) {
    std::snprintf(buffer, sizeof buffer, "%.0fns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buffer, sizeof buffer, ns < 1e4 ? "%.2fµs" : "%.1fµs", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buffer, sizeof buffer, ns < 1e7 ? "%.2fms" : "%.1fms", ns / 1e6);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.2fs", ns / 1e9);
  }
  return buffer;
}

std::string FormatUptime(std::uint64_t ms) {
  const std::uint64_t s = ms / 1000;
  if (s >= 86400) return std::to_string(s / 86400) + "d " + std::to_string(s % 86400 / 3600) + "h";
  if (s >= 3600) return std::to_string(s / 3600) + "h " + std::to_string(s % 3600 / 60) + "m";
  if (s >= 60) return std::to_string(s / 60) + "m " + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

std::string FormatRate(double value) {
  char buffer[32];
  if (!std::isfinite(value) || value <= 0) return "0";
  std::snprintf(buffer, sizeof buffer, value < 10 ? "%.1f" : "%.0f", value);
  return buffer;
}

std::string FormatPercent(double ratio) {
  char buffer[32];
  if (!std::isfinite(ratio) || ratio <= 0) return "0%";
  std::snprintf(buffer, sizeof buffer, ratio < 0.01 ? "%.2f%%" : "%.1f%%", ratio * 100);
  return buffer;
}

std::string OverviewPage(const PageContext& context, const Value& overview) {
  std::vector<std::vector<std::string>> brokers;
  for (const Value& row : Rows(overview, "brokers")) {
    const std::string health = FieldText(row, "health");
    const auto uptime = Num(row, "uptime_ms");
    brokers.push_back({"<code>" + EscapeHtml(FieldText(row, "endpoint")) + "</code>",
                       Badge(health, health == "up" ? "ok" : health == "down" ? "bad" : "warn"),
                       uptime ? EscapeHtml(FormatUptime(static_cast<std::uint64_t>(*uptime))) : "-",
                       Number(Num(row, "jobs_per_s").value_or(0))});
  }
  std::vector<std::vector<std::string>> services;
  for (const Value& row : Rows(overview, "services")) {
    const std::string name = FieldText(row, "name");
    const double errors = Num(row, "error_ratio").value_or(0);
    auto count = [&](std::string_view key) {
      return Num(row, key) ? "<span class=\"num\">" + FieldText(row, key) + "</span>" : std::string("-");
    };
    auto latency = [&](std::string_view key) {
      const auto ns = Num(row, key);
      return ns ? "<span class=\"num\" title=\"" + EscapeHtml(FieldText(row, "latency_stage")) + ", last minute\">" +
                      EscapeHtml(FormatNanos(*ns)) + "</span>"
                : std::string("-");
    };
    services.push_back({"<a href=\"/service?name=" + UrlEncode(name) + "\">" + EscapeHtml(name) + "</a>",
                        count("workers"), count("queued"), count("in_flight"), Number(Num(row, "jobs_per_s").value_or(0)),
                        "<span class=\"num" + std::string(errors > 0 ? " bad" : "") + "\">" +
                            EscapeHtml(FormatPercent(errors)) + "</span>",
                        latency("p50_ns"), latency("p99_ns")});
  }
  const Value* collector = overview.Find("collector");
  std::string main = "<h1>Overview</h1>";
  if (!FieldText(overview, "problem").empty()) {
    main += "<p class=\"problem\" id=\"problem\">" + EscapeHtml(FieldText(overview, "problem")) + "</p>";
  } else {
    main += "<p class=\"problem\" id=\"problem\" hidden></p>";
  }
  main += "<section><h2>Brokers</h2>" +
          Table("brokers", {"Broker", "State", "Uptime", "Jobs/s"}, brokers, "no broker answered yet") + "</section>";
  main += "<section><h2>Services</h2>" +
          Table("services", {"Service", "Workers", "Queued", "In flight", "Jobs/s", "Errors", "p50", "p99"}, services,
                "no service yet") +
          "</section>";
  if (collector != nullptr) {
    main += "<p class=\"footnote\" id=\"collector\">Collector up " +
            EscapeHtml(FormatUptime(static_cast<std::uint64_t>(Num(*collector, "uptime_ms").value_or(0)))) + ", " +
            EscapeHtml(FieldText(*collector, "reports")) + " reports from " + EscapeHtml(FieldText(*collector, "reporters")) +
            " processes. Jobs/s and errors: the brokers' answers over the last 10 s; p50/p99: the last minute.</p>";
  }
  return Layout(context, "overview", "Overview", main, "overview.js");
}

std::string ServicePage(const PageContext& context, const std::string& service, const Value& workers,
                        const std::vector<SeriesView>& stages) {
  std::vector<std::vector<std::string>> worker_rows;
  for (const Value& row : Rows(workers, "")) {
    std::string keys;
    for (const Value& key : Rows(row, "keys")) {
      keys += (keys.empty() ? "" : " ") + std::string("<code>") + EscapeHtml(FieldText(key, "id") + ":" + FieldText(key, "fingerprint")) + "</code>";
    }
    std::string host = FieldText(row, "host");
    if (!FieldText(row, "instance").empty()) host += " (" + FieldText(row, "instance") + ")";
    worker_rows.push_back({EscapeHtml(host.empty() ? "-" : host), EscapeHtml(FieldText(row, "pid")),
                           EscapeHtml(FieldText(row, "capacity")), EscapeHtml(FieldText(row, "in_flight")),
                           keys.empty() ? "-" : keys, "<code>" + EscapeHtml(FieldText(row, "broker")) + "</code>"});
  }
  std::vector<std::vector<std::string>> stage_rows;
  for (const SeriesView& row : stages) {
    const WindowStats& minute = row.windows[kWindow1m];
    const auto group = wire::GroupOf(row.process, row.stage);
    stage_rows.push_back({group ? std::string(wire::ToString(*group)) : "-", EscapeHtml(row.process),
                          EscapeHtml(row.stage), Number(minute.rate()),
                          EscapeHtml(minute.mean_ns() ? FormatNanos(*minute.mean_ns()) : "-"),
                          EscapeHtml(minute.quantile_ns(0.99) ? FormatNanos(*minute.quantile_ns(0.99)) : "-"),
                          EscapeHtml(FormatPercent(minute.error_ratio()))});
  }
  std::string main = "<h1>Service <span id=\"service-name\">" + EscapeHtml(service) + "</span></h1>";
  main +=
      "<section class=\"charts\"><div class=\"chart-card wide\"><h2>Stage latency, mean per second</h2><div class=\"chart\" "
      "id=\"chart-mean\"></div></div><div class=\"chart-card wide\"><h2>Stage latency, p99 per second</h2><div class=\"chart\" "
      "id=\"chart-p99\"></div></div><div class=\"chart-card\"><h2>Throughput (jobs/s, 3 s average)</h2><div class=\"chart\" "
      "id=\"chart-rate\"></div></div><div class=\"chart-card\"><h2>Error rate (3 s average)</h2><div class=\"chart\" "
      "id=\"chart-errors\"></div></div><noscript><p>The charts need JavaScript; the tables below do "
      "not.</p></noscript></section>";
  main += "<section><h2>Workers</h2>" +
          Table("workers", {"Host", "PID", "Capacity", "In flight", "Key fingerprints", "Broker"}, worker_rows,
                "no worker serves it now") +
          "</section>";
  main += "<section><h2>Stages, last minute</h2>" +
          Table("stages", {"Group", "Process", "Stage", "Per second", "Mean", "p99", "Errors"}, stage_rows,
                "no stage timings reported yet") +
          "</section><p class=\"footnote\"><a href=\"/errors?service=" + UrlEncode(service) +
          "\">Errors of this service</a></p>";
  return Layout(context, "service", "Service " + service, main, "service.js");
}

std::string ErrorsPage(const PageContext& context, const ErrorsView& view) {
  auto option = [](std::string_view value, std::string_view label, std::string_view current) {
    return "<option value=\"" + std::string(value) + "\"" + (value == current ? " selected" : "") + ">" +
           std::string(label) + "</option>";
  };
  std::string main = "<h1>Errors</h1>";
  main += "<form class=\"filters\" method=\"get\" action=\"/errors\"><label>Service <input name=\"service\" value=\"" +
          EscapeHtml(view.service) + "\" placeholder=\"any\"></label><label>Code <input name=\"code\" value=\"" +
          EscapeHtml(view.code) + "\" placeholder=\"any, e.g. handler_error\"></label><label>Since <select name=\"since\">" +
          option("", "any time", view.since) + option("15m", "15 minutes", view.since) +
          option("1h", "1 hour", view.since) + option("1d", "1 day", view.since) + option("1w", "1 week", view.since) +
          "</select></label><button type=\"submit\">Filter</button></form>";
  if (!view.problem.empty()) main += "<p class=\"problem\">" + EscapeHtml(view.problem) + "</p>";
  main += "<p id=\"action-result\" class=\"notice\" role=\"status\" hidden></p>";
  if (view.detail) {
    const Value& row = *view.detail;
    auto line = [&](std::string_view name, const std::string& html) {
      return "<dt>" + std::string(name) + "</dt><dd>" + html + "</dd>";
    };
    std::string origin = FieldText(row, "reporter") + " on " + FieldText(row, "host") + " pid " + FieldText(row, "pid");
    if (!FieldText(row, "broker").empty()) origin += " via " + FieldText(row, "broker");
    main += "<section class=\"detail\" id=\"detail\" data-id=\"" + EscapeHtml(FieldText(row, "id")) + "\"><h2>Report " +
            EscapeHtml(FieldText(row, "id")) + "</h2><dl>" +
            line("Time", TimeTag(static_cast<std::uint64_t>(Num(row, "time_ms").value_or(0)))) +
            line("Service", EscapeHtml(FieldText(row, "service"))) +
            line("Job", "<code>" + EscapeHtml(FieldText(row, "job_id")) + "</code> attempt " + EscapeHtml(FieldText(row, "attempt")) +
                            " of " + EscapeHtml(FieldText(row, "max_attempts"))) +
            line("Stage", EscapeHtml(FieldText(row, "stage"))) +
            line("Code", Badge(FieldText(row, "code_name"), "bad")) + line("Message", "<pre>" + EscapeHtml(FieldText(row, "message")) + "</pre>") +
            line("Reporter", EscapeHtml(origin)) +
            line("Fingerprint", "<code>" + EscapeHtml(FieldText(row, "fingerprint")) + "</code>, seen " +
                                    EscapeHtml(FieldText(row, "occurrences")) + " times") +
            line("Dead letter", Flag(row, "dead_letter") ? "yes, payload " + EscapeHtml(FieldText(row, "payload_bytes")) + " bytes" : "no") +
            (FieldText(row, "replays").empty() || FieldText(row, "replays") == "0"
                 ? std::string()
                 : line("Replays", EscapeHtml(FieldText(row, "replays") + ", last: " + FieldText(row, "last_replay")))) +
            "</dl><div class=\"actions\">";
    if (Flag(row, "dead_letter")) {
      main += "<button type=\"button\" data-action=\"replay\" data-id=\"" + EscapeHtml(FieldText(row, "id")) +
              "\">Replay this job…</button><button type=\"button\" class=\"quiet\" data-action=\"reveal\" data-id=\"" +
              EscapeHtml(FieldText(row, "id")) + "\">Show payload</button>";
    }
    main += "</div><pre id=\"payload\" hidden></pre></section>";
  }
  if (view.groups) {
    std::vector<std::vector<std::string>> rows;
    for (const Value& group : Rows(*view.groups, "groups")) {
      const std::string fingerprint = FieldText(group, "fingerprint");
      rows.push_back({"<span class=\"num\">" + EscapeHtml(FieldText(group, "count")) + "</span>", EscapeHtml(FieldText(group, "service")),
                      EscapeHtml(FieldText(group, "stage")), Badge(FieldText(group, "code_name"), "bad"),
                      TimeTag(static_cast<std::uint64_t>(Num(group, "last_ms").value_or(0))),
                      "<a href=\"/errors?id=" + EscapeHtml(FieldText(group, "last_id")) + "\">" + EscapeHtml(FieldText(group, "message")) + "</a>",
                      "<button type=\"button\" class=\"quiet\" data-action=\"replay-group\" data-fingerprint=\"" +
                          EscapeHtml(fingerprint) + "\" data-count=\"" + EscapeHtml(FieldText(group, "count")) +
                          "\">Replay group…</button>"});
    }
    main += "<section><h2>Groups</h2>" +
            Table("groups", {"Count", "Service", "Stage", "Code", "Last seen", "Message", ""}, rows, "no errors") +
            "</section>";
  }
  if (view.reports) {
    std::vector<std::vector<std::string>> rows;
    for (const Value& row : Rows(*view.reports, "reports")) {
      std::string from = FieldText(row, "reporter");
      if (!FieldText(row, "host").empty()) from += "@" + FieldText(row, "host");
      rows.push_back({"<a href=\"/errors?id=" + EscapeHtml(FieldText(row, "id")) + "\">" + EscapeHtml(FieldText(row, "id")) + "</a>",
                      TimeTag(static_cast<std::uint64_t>(Num(row, "time_ms").value_or(0))), EscapeHtml(FieldText(row, "service")),
                      EscapeHtml(FieldText(row, "stage")), Badge(FieldText(row, "code_name"), "bad"), EscapeHtml(from),
                      Flag(row, "dead_letter") ? Badge("dead letter", "warn") : "", EscapeHtml(FieldText(row, "message"))});
    }
    main += "<section><h2>Latest reports</h2>" +
            Table("reports", {"ID", "Time", "Service", "Stage", "Code", "From", "Job", "Message"}, rows, "no reports") +
            "</section>";
  }
  return Layout(context, "errors", "Errors", main, "errors.js");
}

std::string JobsPage(const PageContext& context, const JobsView& view) {
  std::string main = "<h1>Jobs</h1><p class=\"footnote\">Jobs stored by the brokers: sent with <code>--send</code> or "
                     "<code>--enqueue</code> (calls are not stored).</p>";
  main += "<form class=\"filters\" method=\"get\" action=\"/jobs\"><label>Job id <input name=\"id\" size=\"34\" value=\"" +
          EscapeHtml(view.id) + "\" placeholder=\"32 hex digits\"></label><button type=\"submit\">Look up</button></form>";
  std::string states;
  for (const char* state : {"", "queued", "running", "done", "failed", "dead"}) {
    states += "<option value=\"" + std::string(state) + "\"" + (view.state == state ? " selected" : "") + ">" +
              (*state ? state : "any state") + "</option>";
  }
  main += "<form class=\"filters\" method=\"get\" action=\"/jobs\"><label>State <select name=\"state\">" + states +
          "</select></label><label>Service <input name=\"service\" value=\"" + EscapeHtml(view.service) +
          "\" placeholder=\"any\"></label><input type=\"hidden\" name=\"list\" value=\"1\"><button "
          "type=\"submit\">List</button></form>";
  if (!view.problem.empty()) main += "<p class=\"problem\">" + EscapeHtml(view.problem) + "</p>";
  auto row_of = [](const Value& job) {
    return std::vector<std::string>{
        "<a href=\"/jobs?id=" + EscapeHtml(FieldText(job, "id")) + "\"><code>" + EscapeHtml(FieldText(job, "id")) + "</code></a>",
        EscapeHtml(FieldText(job, "service")), Badge(FieldText(job, "state"), FieldText(job, "state") == "done" ? "ok" : FieldText(job, "state") == "failed" || FieldText(job, "state") == "dead" ? "bad" : "warn"),
        EscapeHtml(FieldText(job, "attempt") + "/" + FieldText(job, "max_attempts")), EscapeHtml(FieldText(job, "worker")),
        TimeTag(static_cast<std::uint64_t>(Num(job, "since_ms").value_or(0))),
        EscapeHtml(FieldText(job, "code").empty() ? "" : FieldText(job, "code") + ": " + FieldText(job, "message")),
        "<code>" + EscapeHtml(FieldText(job, "broker")) + "</code>"};
  };
  const std::vector<std::string> headers = {"Job", "Service", "State", "Attempt", "Worker", "Since", "Error", "Broker"};
  if (view.job) {
    main += "<section id=\"job\" data-id=\"" + EscapeHtml(FieldText(*view.job, "id")) + "\"><h2>Job</h2>" +
            Table("job-table", headers, {row_of(*view.job)}, "") + "</section>";
    if (Flag(*view.job, "has_result")) {
      main += "<div class=\"actions\"><button type=\"button\" class=\"quiet\" data-action=\"reveal-result\" data-id=\"" +
              EscapeHtml(FieldText(*view.job, "id")) + "\">Show result</button></div><pre id=\"payload\" hidden></pre>";
    }
  }
  if (view.jobs) {
    std::vector<std::vector<std::string>> rows;
    for (const Value& job : Rows(*view.jobs, "")) rows.push_back(row_of(job));
    main += "<section><h2>Stored jobs</h2>" + Table("jobs", headers, rows, "no stored jobs match") + "</section>";
  }
  return Layout(context, "jobs", "Jobs", main, "jobs.js");
}

std::string LoginPage(std::string_view problem) {
  std::string main = "<h1>Log in</h1><p>This dashboard is reachable beyond this machine; give the token from its token file.</p>";
  if (!problem.empty()) main += "<p class=\"problem\">" + EscapeHtml(problem) + "</p>";
  main += "<form class=\"filters\" method=\"post\" action=\"/login\"><label>Token <input type=\"password\" name=\"token\" "
          "autocomplete=\"current-password\" autofocus></label><button type=\"submit\">Log in</button></form>";
  return Layout(PageContext{}, "login", "Log in", main);
}

std::string MessagePage(std::string_view title, std::string_view message) {
  return Layout(PageContext{}, "message", title,
                "<h1>" + EscapeHtml(title) + "</h1><p class=\"problem\">" + EscapeHtml(message) + "</p>");
}

}  // namespace courier::metrics
