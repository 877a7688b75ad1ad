// broker_metrics.hpp — what `courier-broker --http` serves on /metrics. The loop thread
// takes a BrokerMetrics snapshot (Broker::MetricsSnapshot, a copy of counters and a row per
// service); the HTTP thread renders it (RenderBrokerMetrics), so the HTTP thread never
// reads the broker's state. Families (Prometheus text format 0.0.4):
//
//   per service, label service="NAME":
//     courier_broker_jobs_accepted_total       counter  jobs queued (after the queue's bounds)
//     courier_broker_jobs_dispatched_total     counter  handed to a worker (redeliveries too)
//     courier_broker_jobs_answered_total       counter  answered by a worker (reply or error)
//     courier_broker_jobs_failed_total         counter  ended without a reply (errors, expiry, dead letters)
//     courier_broker_busy_rejections_total     counter  refused busy at the queue's bounds
//     courier_broker_jobs_expired_total        counter  deadline passed while queued or in flight
//     courier_broker_jobs_redelivered_total    counter  handed out again with attempt + 1
//     courier_broker_jobs_dead_lettered_total  counter
//     courier_broker_jobs_queued               gauge    waiting for a worker
//     courier_broker_jobs_in_flight            gauge    held by workers
//     courier_broker_workers                   gauge    workers registered
//     courier_broker_queued_bytes              gauge    bytes of jobs held (queued + in flight)
//   broker-wide: the `stats` query's counters as courier_broker_<name>_total (crashes,
//     poison_jobs, protocol_errors, malformed_messages, slow_clients_dropped, ... see
//     broker_metrics.cpp), and gauges courier_broker_connections, courier_broker_held_bytes,
//     courier_broker_dead_letters_buffered, courier_broker_jobs_live, courier_broker_services,
//     courier_broker_snapshot_age_seconds (how old the loop's last snapshot was when served);
//   courier_build_info{program="courier-broker",...} and process_* (prometheus/process_metrics.hpp).
//
// Per-service counters start again at 0 when a pruned service (service_grace with no worker
// and no job) comes back; Prometheus's rate() and increase() treat that as a reset.
// Thread-safety: BrokerMetrics is a plain value; RenderBrokerMetrics is a pure function.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "broker.hpp"

namespace courier::broker {

struct ServiceMetrics {
  std::string name;
  std::uint64_t accepted = 0;
  std::uint64_t dispatched = 0;
  std::uint64_t answered = 0;
  std::uint64_t failed = 0;
  std::uint64_t busy_rejections = 0;
  std::uint64_t expired = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t queued = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t workers = 0;
  std::uint64_t bytes = 0;
};

struct BrokerMetrics {
  Counters counters;
  std::vector<ServiceMetrics> services;  // by name
  std::uint64_t connections = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t held_bytes = 0;
  std::uint64_t dead_letters_buffered = 0;
  std::uint64_t jobs_live = 0;
  std::uint64_t workers_live = 0;
  SteadyTime taken{};  // when the loop took it
};

// Returns: the /metrics page for `metrics`, served at `now` (for the snapshot's age).
std::string RenderBrokerMetrics(const BrokerMetrics& metrics, SteadyTime now);

}  // namespace courier::broker
