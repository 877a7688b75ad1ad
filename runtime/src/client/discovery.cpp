#include "client/discovery.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>

#include "courier/error.hpp"

namespace courier::detail {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::string Hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto byte = static_cast<std::uint8_t>(c);
    out += kHexDigits[byte >> 4];
    out += kHexDigits[byte & 0x0f];
  }
  return out;
}

std::uint64_t UintField(const Value& map, std::string_view key) {
  const Value* field = map.Find(key);
  if (field == nullptr) return 0;
  switch (field->type()) {
    case Value::Type::kUint: return field->AsUint();
    case Value::Type::kInt: return field->AsInt() < 0 ? 0 : static_cast<std::uint64_t>(field->AsInt());
    case Value::Type::kDouble: return field->AsDouble() < 0 ? 0 : static_cast<std::uint64_t>(field->AsDouble());
    default: return 0;
  }
}

std::string TextField(const Value& map, std::string_view key) {
  const Value* field = map.Find(key);
  if (field == nullptr) return {};
  switch (field->type()) {
    case Value::Type::kString: return field->AsString();
    case Value::Type::kBinary: return Hex(field->AsBinary().bytes);
    case Value::Type::kUint: return std::to_string(field->AsUint());
    case Value::Type::kInt: return std::to_string(field->AsInt());
    case Value::Type::kBool: return field->AsBool() ? "true" : "false";
    default: return {};
  }
}

const Value::Array& Rows(const Value& result, std::string_view what) {
  if (!result.IsArray()) {
    throw Error(ErrorCode::kBadRequest, std::string(what) + " answer: expected an array, got " +
                                            std::string(Value::TypeName(result.type())));
  }
  for (const Value& row : result.AsArray()) {
    if (!row.IsMap()) throw Error(ErrorCode::kBadRequest, std::string(what) + " answer: expected an array of maps");
  }
  return result.AsArray();
}

}  // namespace

Value DecodeQueryReply(std::string_view body) {
  Value reply = DecodeValue(body);
  if (!reply.IsArray() || reply.AsArray().size() < 2 || !reply.AsArray()[0].IsInteger()) {
    throw Error(ErrorCode::kBadRequest, "query reply: expected [status, result]");
  }
  auto& fields = reply.AsArray();
  const std::uint64_t status = fields[0].type() == Value::Type::kUint ? fields[0].AsUint() : 0;
  if (fields[0].type() == Value::Type::kInt || status != 0) {
    const ErrorCode code = IsWireCode(static_cast<std::uint32_t>(status)) && status <= 0xffff
                               ? static_cast<ErrorCode>(status)
                               : ErrorCode::kInternal;
    const std::string message = fields[1].IsString() ? fields[1].AsString() : "the broker refused the query";
    throw Error(code, message);
  }
  return std::move(fields[1]);
}

std::vector<ServiceInfo> ParseServices(const Value& result, std::string_view broker) {
  std::vector<ServiceInfo> services;
  for (const Value& row : Rows(result, "services")) {
    ServiceInfo info;
    info.name = TextField(row, "name");
    info.workers = UintField(row, "workers");
    info.queued = UintField(row, "queued");
    info.in_flight = UintField(row, "in_flight");
    info.strategy = TextField(row, "strategy");
    info.dispatched = UintField(row, "dispatched");
    info.replied = UintField(row, "replied");
    info.failed = UintField(row, "failed");
    info.brokers.emplace_back(broker);
    services.push_back(std::move(info));
  }
  std::sort(services.begin(), services.end(),
            [](const ServiceInfo& a, const ServiceInfo& b) { return a.name < b.name; });
  return services;
}

std::vector<WorkerInfo> ParseWorkers(const Value& result, std::string_view broker) {
  std::vector<WorkerInfo> workers;
  for (const Value& row : Rows(result, "workers")) {
    WorkerInfo info;
    info.id = TextField(row, "id");
    info.service = TextField(row, "service");
    info.protocol = TextField(row, "protocol");
    info.capacity = UintField(row, "capacity");
    info.in_flight = UintField(row, "in_flight");
    info.weight = UintField(row, "weight");
    info.host = TextField(row, "host");
    info.pid = UintField(row, "pid");
    info.instance = TextField(row, "instance");
    info.idle_ms = UintField(row, "idle_ms");
    info.stuck = UintField(row, "stuck");
    if (const Value* keys = row.Find("keys"); keys != nullptr && keys->IsArray()) {
      for (const Value& key : keys->AsArray()) {
        if (!key.IsMap()) continue;
        const std::uint64_t id = UintField(key, "id");
        if (id == 0 || id > UINT32_MAX) continue;
        info.keys.push_back(WorkerKey{static_cast<std::uint32_t>(id), TextField(key, "fingerprint")});
      }
    }
    info.broker = std::string(broker);
    workers.push_back(std::move(info));
  }
  std::sort(workers.begin(), workers.end(), [](const WorkerInfo& a, const WorkerInfo& b) {
    return std::tie(a.service, a.id) < std::tie(b.service, b.id);
  });
  return workers;
}

std::vector<ServiceInfo> MergeServices(const std::vector<std::vector<ServiceInfo>>& per_broker) {
  std::map<std::string, ServiceInfo> merged;
  for (const auto& services : per_broker) {
    for (const ServiceInfo& service : services) {
      auto [it, fresh] = merged.try_emplace(service.name);
      ServiceInfo& into = it->second;
      if (fresh) {
        into = service;
        continue;
      }
      into.workers += service.workers;
      into.queued += service.queued;
      into.in_flight += service.in_flight;
      into.dispatched += service.dispatched;
      into.replied += service.replied;
      into.failed += service.failed;
      if (into.strategy != service.strategy) into.strategy = "mixed";
      into.brokers.insert(into.brokers.end(), service.brokers.begin(), service.brokers.end());
    }
  }
  std::vector<ServiceInfo> out;
  out.reserve(merged.size());
  for (auto& [name, info] : merged) out.push_back(std::move(info));
  return out;
}

namespace {

// Returns: what tells one worker from another across brokers (see MergeServices).
std::string WorkerIdentity(const WorkerInfo& worker) {
  if (!worker.instance.empty() || worker.pid != 0) {
    return "p\n" + worker.host + "\n" + std::to_string(worker.pid) + "\n" + worker.instance;
  }
  return "b\n" + worker.broker + "\n" + worker.id;
}

}  // namespace

std::vector<ServiceInfo> MergeServices(const std::vector<std::vector<ServiceInfo>>& per_broker,
                                       const std::vector<std::optional<std::vector<WorkerInfo>>>& workers_per_broker) {
  std::vector<ServiceInfo> merged = MergeServices(per_broker);
  std::map<std::string, std::set<std::string>> distinct;  // service → worker identities
  std::map<std::string, std::uint64_t> unlisted;           // service → workers of brokers without a list
  for (std::size_t b = 0; b < per_broker.size(); ++b) {
    if (b < workers_per_broker.size() && workers_per_broker[b].has_value()) {
      for (const WorkerInfo& worker : *workers_per_broker[b]) distinct[worker.service].insert(WorkerIdentity(worker));
      continue;
    }
    for (const ServiceInfo& service : per_broker[b]) unlisted[service.name] += service.workers;
  }
  for (ServiceInfo& service : merged) {
    const auto found = distinct.find(service.name);
    service.workers = (found == distinct.end() ? 0 : found->second.size()) + unlisted[service.name];
  }
  return merged;
}

std::vector<WorkerInfo> MergeWorkers(const std::vector<std::vector<WorkerInfo>>& per_broker) {
  std::vector<WorkerInfo> out;
  for (const auto& workers : per_broker) out.insert(out.end(), workers.begin(), workers.end());
  std::stable_sort(out.begin(), out.end(), [](const WorkerInfo& a, const WorkerInfo& b) {
    return std::tie(a.service, a.id, a.broker) < std::tie(b.service, b.id, b.broker);
  });
  return out;
}

}  // namespace courier::detail
