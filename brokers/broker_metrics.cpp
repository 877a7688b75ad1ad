#include "broker_metrics.hpp"

#include <algorithm>

#include "prometheus/process_metrics.hpp"
#include "prometheus/text_format.hpp"

namespace courier::broker {

using prometheus::Labels;
using prometheus::MetricType;
using prometheus::TextWriter;

BrokerMetrics Broker::MetricsSnapshot(const Now& now) const {
  BrokerMetrics out;
  out.counters = counters_;
  out.connections = connections_;
  out.connections_refused = connections_refused_;
  out.held_bytes = held_bytes_;
  out.dead_letters_buffered = dead_letters_queued_;
  out.jobs_live = jobs_.live();
  out.workers_live = workers_.live();
  out.taken = now.steady;
  out.services.reserve(live_services_);
  for (std::uint32_t slot = 0; slot < services_.capacity(); ++slot) {
    if (!services_.IsLive(slot)) continue;
    const Service& service = services_[slot];
    out.services.push_back(ServiceMetrics{.name = service.name,
                                          .accepted = service.accepted,
                                          .dispatched = service.dispatched,
                                          .answered = service.answered,
                                          .failed = service.failed,
                                          .busy_rejections = service.busy_rejections,
                                          .expired = service.expired,
                                          .redelivered = service.redelivered,
                                          .dead_lettered = service.dead_lettered,
                                          .queued = service.queue.size(),
                                          .in_flight = service.in_flight,
                                          .workers = service.workers.size(),
                                          .bytes = service.bytes});
  }
  std::sort(out.services.begin(), out.services.end(),
            [](const ServiceMetrics& a, const ServiceMetrics& b) { return a.name < b.name; });
  return out;
}

namespace {

struct PerService {
  const char* name;
  MetricType type;
  std::uint64_t ServiceMetrics::*field;
  const char* help;
};

constexpr PerService kPerService[] = {
    {"courier_broker_jobs_accepted_total", MetricType::kCounter, &ServiceMetrics::accepted,
     "Jobs the broker queued for the service (taken within the queue's bounds)."},
    {"courier_broker_jobs_dispatched_total", MetricType::kCounter, &ServiceMetrics::dispatched,
     "Jobs handed to a worker of the service, redeliveries included."},
    {"courier_broker_jobs_answered_total", MetricType::kCounter, &ServiceMetrics::answered,
     "Jobs a worker of the service answered, with a reply or an error reply."},
    {"courier_broker_jobs_failed_total", MetricType::kCounter, &ServiceMetrics::failed,
     "Jobs of the service that ended without a reply: error replies, expiry, dead letters, dropped clients."},
    {"courier_broker_busy_rejections_total", MetricType::kCounter, &ServiceMetrics::busy_rejections,
     "Jobs refused busy because the service's queue was at queue_limit or max_queued_bytes."},
    {"courier_broker_jobs_expired_total", MetricType::kCounter, &ServiceMetrics::expired,
     "Jobs of the service whose deadline passed while queued or held by a worker."},
    {"courier_broker_jobs_redelivered_total", MetricType::kCounter, &ServiceMetrics::redelivered,
     "Jobs of the service handed out again with attempt + 1 (worker lost, key rejects, restart)."},
    {"courier_broker_jobs_dead_lettered_total", MetricType::kCounter, &ServiceMetrics::dead_lettered,
     "Jobs of the service dead-lettered to courier.errors (attempts exhausted, poison jobs)."},
    {"courier_broker_jobs_queued", MetricType::kGauge, &ServiceMetrics::queued,
     "Jobs of the service waiting in its queue for a worker."},
    {"courier_broker_jobs_in_flight", MetricType::kGauge, &ServiceMetrics::in_flight,
     "Jobs of the service held by its workers."},
    {"courier_broker_workers", MetricType::kGauge, &ServiceMetrics::workers,
     "Workers registered for the service."},
    {"courier_broker_queued_bytes", MetricType::kGauge, &ServiceMetrics::bytes,
     "Bytes of the service's jobs the broker holds, queued or in flight (bounded by max_queued_bytes)."},
};

struct BrokerWide {
  const char* name;
  std::uint64_t Counters::*field;
  const char* help;
};

// The stats query's counters (PROTOCOL.md, "stats"), under Prometheus names. Those that
// the per-service families add up to exactly (accepted, answered, redelivered, dead
// lettered) are left to sum(); busy and expired also count jobs no service was found for.
constexpr BrokerWide kBrokerWide[] = {
    {"courier_broker_crashes_total", &Counters::crashes,
     "Worker crashes charged to jobs (a worker lost while holding a job, or ERROR worker_crashed)."},
    {"courier_broker_poison_jobs_total", &Counters::poison_jobs,
     "Jobs dead-lettered at their service's max_crashes."},
    {"courier_broker_protocol_errors_total", &Counters::protocol_errors,
     "Messages from known peers that broke the protocol."},
    {"courier_broker_malformed_messages_total", &Counters::malformed, "Malformed messages dropped."},
    {"courier_broker_unknown_commands_total", &Counters::unknown_command, "Messages with an unknown command."},
    {"courier_broker_oversized_messages_total", &Counters::oversized,
     "Messages over max_message_bytes, dropped and answered too_large."},
    {"courier_broker_jobs_expired_all_total", &Counters::expired,
     "Jobs whose deadline passed, all services together, also those expired on arrival (before a service was "
     "found)."},
    {"courier_broker_busy_rejections_all_total", &Counters::busy_rejections,
     "Jobs refused busy, all services together (also those refused before a service was found)."},
    {"courier_broker_dead_letters_dropped_total", &Counters::dead_letter_dropped,
     "Dead letters dropped because dead_letter_buffer was full."},
    {"courier_broker_late_replies_total", &Counters::late_replies,
     "Worker answers for jobs already answered or not held by that worker."},
    {"courier_broker_unreachable_clients_total", &Counters::unreachable_clients,
     "Answers that found their client gone."},
    {"courier_broker_client_sends_full_total", &Counters::client_sends_full,
     "Answers dropped because the client's pipe was at send_hwm."},
    {"courier_broker_slow_clients_dropped_total", &Counters::slow_clients_dropped,
     "Client connections shut down past max_client_bytes of unread answers."},
    {"courier_broker_workers_expired_total", &Counters::workers_expired, "Workers dropped at heartbeat expiry."},
    {"courier_broker_workers_unreachable_total", &Counters::workers_unreachable,
     "Workers removed because a send to them failed (connection gone)."},
    {"courier_broker_refused_peers_total", &Counters::refused_peers,
     "Peers or messages refused by CURVE authentication or role checks."},
    {"courier_broker_key_mismatches_total", &Counters::key_mismatches,
     "READYs whose payload key fingerprint differs from another worker's of the service."},
    {"courier_broker_unknown_service_total", &Counters::unknown_service,
     "Jobs answered no_such_service (no worker ever registered the service)."},
    {"courier_broker_bytes_rejections_total", &Counters::bytes_rejections,
     "Jobs refused busy at max_queued_bytes or max_total_queued_bytes."},
    {"courier_broker_deadline_rejections_total", &Counters::deadline_rejections,
     "Jobs refused because their deadline was further ahead than max_deadline."},
    {"courier_broker_new_service_refusals_total", &Counters::new_service_refusals,
     "New service names refused (per-peer quota or a full service table)."},
    {"courier_broker_services_pruned_total", &Counters::services_pruned,
     "Services forgotten after service_grace with no worker and no job."},
    {"courier_broker_store_refusals_total", &Counters::store_refusals,
     "Jobs refused because the job store could not commit them."},
    {"courier_broker_restored_jobs_total", &Counters::restored_jobs, "Jobs loaded from the job store at start."},
    {"courier_broker_lookups_total", &Counters::lookups, "job and jobs queries and titanic.reply answered."},
};

}  // namespace

std::string RenderBrokerMetrics(const BrokerMetrics& metrics, SteadyTime now) {
  TextWriter w;
  for (const PerService& family : kPerService) {
    w.Family(family.name, family.type, family.help);
    for (const ServiceMetrics& service : metrics.services) {
      w.Sample(family.name, Labels().Add("service", service.name), service.*family.field);
    }
  }
  for (const BrokerWide& family : kBrokerWide) {
    w.Single(family.name, MetricType::kCounter, family.help, metrics.counters.*family.field);
  }
  w.Single("courier_broker_connections_refused_total", MetricType::kCounter,
           "TCP connections closed on arrival at max_connections.", metrics.connections_refused);
  w.Single("courier_broker_connections", MetricType::kGauge, "TCP connections open.", metrics.connections);
  w.Single("courier_broker_held_bytes", MetricType::kGauge,
           "Bytes of jobs held, all services together (bounded by max_total_queued_bytes).", metrics.held_bytes);
  w.Single("courier_broker_dead_letters_buffered", MetricType::kGauge,
           "Dead letters waiting for courier.errors (bounded by dead_letter_buffer).", metrics.dead_letters_buffered);
  w.Single("courier_broker_jobs_live", MetricType::kGauge,
           "Jobs the broker holds, queued, in flight or awaiting commit.", metrics.jobs_live);
  w.Single("courier_broker_workers_live", MetricType::kGauge, "Workers registered, all services together.",
           metrics.workers_live);
  w.Single("courier_broker_services", MetricType::kGauge, "Services the broker knows.",
           static_cast<std::uint64_t>(metrics.services.size()));
  w.Single("courier_broker_snapshot_age_seconds", MetricType::kGauge,
           "Age of the figures on this page: how long ago the broker loop published them (it does every 250 ms; "
           "/healthz answers 503 past 3 s).",
           std::chrono::duration<double>(std::max(now, metrics.taken) - metrics.taken).count());
  prometheus::WriteBuildInfo(w, "courier-broker");
  prometheus::WriteProcessMetrics(w);
  return w.Take();
}

}  // namespace courier::broker
