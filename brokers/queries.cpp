// Management query replies (schemas/PROTOCOL.md, "Management queries").
#include <msgpack.hpp>

#include "courier/codec.hpp"

#include "broker.hpp"

namespace courier::broker {
namespace {

using Packer = msgpack::packer<detail::StringWriter>;

void Str(Packer& packer, std::string_view text) {
  packer.pack_str(static_cast<std::uint32_t>(text.size()));
  packer.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

void Field(Packer& packer, std::string_view key, std::uint64_t value) {
  Str(packer, key);
  packer.pack_uint64(value);
}

void Field(Packer& packer, std::string_view key, std::string_view value) {
  Str(packer, key);
  Str(packer, value);
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += kDigits[(static_cast<unsigned char>(c) >> 4) & 0xf];
    out += kDigits[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

std::uint64_t Ms(std::chrono::steady_clock::duration duration) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  return ms < 0 ? 0 : static_cast<std::uint64_t>(ms);
}

}  // namespace

std::string Broker::BuildServicesReply() const {
  std::string out;
  detail::StringWriter stream(out);
  Packer packer(stream);
  packer.pack_array(2);
  packer.pack_uint8(0);
  // Services with a worker or a job (PROTOCOL.md §9); idle ones wait out service_grace.
  auto listed = [](const Service& service) {
    return service.live && (!service.workers.empty() || !service.queue.empty() || service.in_flight > 0);
  };
  std::vector<std::uint32_t> rows;
  for (std::uint32_t slot = 0; slot < services_.capacity(); ++slot) {
    if (services_.IsLive(slot) && listed(services_[slot])) rows.push_back(slot);
  }
  packer.pack_array(static_cast<std::uint32_t>(rows.size()));
  for (const std::uint32_t slot : rows) {
    const Service& service = services_[slot];
    packer.pack_map(8);
    Field(packer, "name", service.name);
    Field(packer, "workers", service.workers.size());
    Field(packer, "queued", service.queue.size());
    Field(packer, "in_flight", service.in_flight);
    Field(packer, "strategy", ToString(service.policy.strategy));
    Field(packer, "dispatched", service.dispatched);
    Field(packer, "replied", service.replied);
    Field(packer, "failed", service.failed);
  }
  return out;
}

std::string Broker::BuildWorkersReply(const Now& now) const {
  std::string out;
  detail::StringWriter stream(out);
  Packer packer(stream);
  packer.pack_array(2);
  packer.pack_uint8(0);
  packer.pack_array(static_cast<std::uint32_t>(workers_.live()));
  for (std::uint32_t slot = 0; slot < workers_.capacity(); ++slot) {
    const Worker& worker = workers_[slot];
    if (!worker.live) continue;
    packer.pack_map(12);
    Field(packer, "id", Hex(worker.identity));
    Field(packer, "service", services_[worker.service].name);
    Field(packer, "protocol", worker.kind == PeerKind::kCourier ? "courier" : "mdp");
    Field(packer, "capacity", worker.capacity);
    Field(packer, "in_flight", worker.in_flight);
    Field(packer, "weight", worker.weight);
    Field(packer, "host", worker.info.host);
    Field(packer, "pid", worker.info.pid);
    Field(packer, "instance", worker.info.instance);
    Field(packer, "idle_ms", Ms(now.steady - worker.last_dispatch));
    Field(packer, "stuck", worker.stuck);
    // The payload keys its READY announced: id and fingerprint (16 hex digits), never a key.
    Str(packer, "keys");
    packer.pack_array(static_cast<std::uint32_t>(worker.info.keys.size()));
    for (const detail::KeyFingerprint& key : worker.info.keys) {
      packer.pack_map(2);
      Field(packer, "id", key.id);
      Field(packer, "fingerprint", Hex(key.fingerprint));
    }
  }
  return out;
}

std::string Broker::BuildStatsReply(const Now& now) const {
  std::string out;
  detail::StringWriter stream(out);
  Packer packer(stream);
  packer.pack_array(2);
  packer.pack_uint8(0);
  packer.pack_map(40);
  Field(packer, "malformed", counters_.malformed);
  Field(packer, "unknown_command", counters_.unknown_command);
  Field(packer, "oversized", counters_.oversized);
  Field(packer, "protocol_errors", counters_.protocol_errors);
  Field(packer, "expired", counters_.expired);
  Field(packer, "busy_rejections", counters_.busy_rejections);
  Field(packer, "redelivered", counters_.redelivered);
  Field(packer, "dead_lettered", counters_.dead_lettered);
  Field(packer, "dead_letter_buffered", dead_letters_queued_);
  Field(packer, "dead_letter_dropped", counters_.dead_letter_dropped);
  Field(packer, "late_replies", counters_.late_replies);
  Field(packer, "unreachable_clients", counters_.unreachable_clients);
  Field(packer, "workers_expired", counters_.workers_expired);
  Field(packer, "refused_peers", counters_.refused_peers);
  Field(packer, "jobs_accepted", counters_.jobs_accepted);
  Field(packer, "jobs_answered", counters_.jobs_answered);
  Field(packer, "crashes", counters_.crashes);
  Field(packer, "poison_jobs", counters_.poison_jobs);
  Field(packer, "workers_unreachable", counters_.workers_unreachable);
  Field(packer, "key_mismatches", counters_.key_mismatches);
  Field(packer, "foreign_job_ids", counters_.foreign_job_ids);
  Field(packer, "invalid_service_names", counters_.invalid_service_names);
  Field(packer, "services_pruned", counters_.services_pruned);
  Field(packer, "new_service_refusals", counters_.new_service_refusals);
  Field(packer, "bytes_rejections", counters_.bytes_rejections);
  Field(packer, "deadline_rejections", counters_.deadline_rejections);
  Field(packer, "client_sends_full", counters_.client_sends_full);
  Field(packer, "unknown_service", counters_.unknown_service);
  Field(packer, "slow_clients_dropped", counters_.slow_clients_dropped);
  Field(packer, "store_refusals", counters_.store_refusals);
  Field(packer, "restored_jobs", counters_.restored_jobs);
  Field(packer, "lookups", counters_.lookups);
  Field(packer, "waiting_lookups", waiters_.size());
  Field(packer, "held_bytes", held_bytes_);
  Field(packer, "connections", connections_);
  Field(packer, "connections_refused", connections_refused_);
  Field(packer, "jobs_live", jobs_.live());
  Field(packer, "workers_live", workers_.live());
  Field(packer, "services", live_services_);
  Field(packer, "uptime_ms", Ms(now.steady - started_));
  return out;
}

}  // namespace courier::broker
