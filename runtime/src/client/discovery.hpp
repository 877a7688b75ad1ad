// discovery.hpp — reading the broker's management answers (QUERY "services", "workers")
// into ServiceInfo and WorkerInfo, and merging several brokers' answers for the cluster view.
//
// Lenient by design: fields a broker omits keep their defaults and fields it adds are
// ignored, so a newer broker does not break an older client. Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "courier/client.hpp"
#include "courier/value.hpp"

namespace courier::detail {

// Returns: the result of a QUERY_REPLY body [status, result].
// Throws: Error(kBadRequest) for a malformed body; Error(status) when status != 0 (the
// broker refused; its message is the result if it is a string).
Value DecodeQueryReply(std::string_view body);

// Throws: Error(kBadRequest) if `result` is not an array of maps.
std::vector<ServiceInfo> ParseServices(const Value& result, std::string_view broker);
std::vector<WorkerInfo> ParseWorkers(const Value& result, std::string_view broker);

// Returns: services merged by name (counts summed, brokers listed), sorted by name. The
// strategy is kept when all brokers agree, else "mixed".
std::vector<ServiceInfo> MergeServices(const std::vector<std::vector<ServiceInfo>>& per_broker);
// As above, but `workers` counts distinct workers: a worker host registers with every
// broker, so the brokers' counts summed would count it once per broker. A worker is known
// by its READY's host, pid and instance (an MDP worker, which sends none, by its broker
// and id). `workers_per_broker[i]` is broker i's worker list (the one whose services are
// per_broker[i]), or nullopt if it did not answer: its own counts are then added.
std::vector<ServiceInfo> MergeServices(const std::vector<std::vector<ServiceInfo>>& per_broker,
                                       const std::vector<std::optional<std::vector<WorkerInfo>>>& workers_per_broker);
// Returns: every broker's workers, sorted by service, id and broker.
std::vector<WorkerInfo> MergeWorkers(const std::vector<std::vector<WorkerInfo>>& per_broker);

}  // namespace courier::detail
