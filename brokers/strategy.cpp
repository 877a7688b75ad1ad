// Worker selection per service strategy. Only workers with free credit are eligible, and
// not the one a job is to avoid (it could not open it) while the service has another.
#include <limits>

#include "broker.hpp"

namespace courier::broker {

std::uint32_t Broker::PickWorker(std::uint32_t service_slot, std::uint32_t avoid, bool& held) {
  Service& service = services_[service_slot];
  const auto& members = service.workers;
  held = false;
  if (avoid != 0) {
    // Avoid it only while another worker of the service takes jobs (capacity > 0, busy or
    // not): a service whose only open worker is the one that could not open the job gives
    // it back to it (it may have reloaded its keys; each such reject spends an attempt).
    bool present = false;
    bool others_open = false;
    for (const std::uint32_t slot : members) {
      const Worker& worker = workers_[slot];
      if (worker.serial == avoid) {
        present = true;
        held = worker.in_flight < worker.capacity;
      } else if (worker.capacity > 0) {
        others_open = true;
      }
    }
    if (!present || !others_open) {
      avoid = 0;
      held = false;
    }
  }
  const auto has_credit = [&](std::uint32_t slot) {
    const Worker& worker = workers_[slot];
    return worker.in_flight < worker.capacity && (avoid == 0 || worker.serial != avoid);
  };
  switch (service.policy.strategy) {
    case Strategy::kLeastLoaded: {
      // Lowest in_flight/capacity; ties go to the worker idle longest, so none is skipped.
      std::uint32_t best = kNone;
      for (const std::uint32_t slot : members) {
        if (!has_credit(slot)) continue;
        if (best == kNone) {
          best = slot;
          continue;
        }
        const Worker& a = workers_[slot];
        const Worker& b = workers_[best];
        const std::uint64_t load_a = std::uint64_t{a.in_flight} * b.capacity;
        const std::uint64_t load_b = std::uint64_t{b.in_flight} * a.capacity;
        if (load_a < load_b || (load_a == load_b && a.dispatch_sequence < b.dispatch_sequence)) best = slot;
      }
      return best;
    }
    case Strategy::kRoundRobin: {
      for (std::size_t step = 0; step < members.size(); ++step) {
        const std::size_t index = (service.round_robin_cursor + step) % members.size();
        if (has_credit(members[index])) {
          service.round_robin_cursor = index + 1;
          return members[index];
        }
      }
      return kNone;
    }
    case Strategy::kRandom: {
      std::uint32_t eligible = 0;
      for (const std::uint32_t slot : members) eligible += has_credit(slot) ? 1 : 0;
      if (eligible == 0) return kNone;
      std::uint32_t pick = static_cast<std::uint32_t>(random_() % eligible);
      for (const std::uint32_t slot : members) {
        if (!has_credit(slot)) continue;
        if (pick-- == 0) return slot;
      }
      return kNone;
    }
    case Strategy::kWeighted: {
      // Smooth weighted round-robin (as in nginx): exact proportions, evenly interleaved.
      std::int64_t total = 0;
      std::uint32_t best = kNone;
      for (const std::uint32_t slot : members) {
        if (!has_credit(slot)) continue;
        Worker& worker = workers_[slot];
        worker.current_weight += worker.weight;
        total += worker.weight;
        if (best == kNone || worker.current_weight > workers_[best].current_weight) best = slot;
      }
      if (best != kNone) workers_[best].current_weight -= total;
      return best;
    }
  }
  return kNone;
}

}  // namespace courier::broker
