#include "zap.hpp"

#include <zmq.h>

namespace courier::broker {

PeerRole RoleFromUserId(std::string_view user_id) {
  if (user_id.starts_with("client:")) return PeerRole::kClient;
  if (user_id.starts_with("worker:")) return PeerRole::kWorker;
  if (user_id.starts_with("both:")) return PeerRole::kBoth;
  return PeerRole::kAny;
}

ZapHandler::ZapHandler(std::map<std::string, std::string> clients, std::map<std::string, std::string> workers) {
  for (auto& [name, key] : clients) client_names_.emplace(key, name);
  for (auto& [name, key] : workers) worker_names_.emplace(key, name);
}

ZapHandler::Decision ZapHandler::Handle(const std::vector<std::string>& request) const {
  // Request: version, request id, domain, address, identity, mechanism, credentials...
  Decision decision;
  const std::string request_id = request.size() > 1 ? request[1] : std::string{};
  const auto answer = [&](const char* code, const char* text, const std::string& user) {
    decision.reply = {"1.0", request_id, code, text, user, ""};
  };
  if (request.size() < 7 || request[0] != "1.0") {
    answer("400", "malformed ZAP request", "");
    return decision;
  }
  decision.address = request[3];
  if (request[5] != "CURVE" || request[6].size() != 32) {
    answer("400", "only CURVE is accepted", "");
    return decision;
  }
  char z85[41] = {};
  zmq_z85_encode(z85, reinterpret_cast<const std::uint8_t*>(request[6].data()), 32);
  decision.key = z85;
  const auto client = client_names_.find(decision.key);
  const auto worker = worker_names_.find(decision.key);
  if (client == client_names_.end() && worker == worker_names_.end()) {
    answer("400", "key not on any allow-list", "");
    return decision;
  }
  decision.admitted = true;
  if (client != client_names_.end() && worker != worker_names_.end()) {
    answer("200", "OK", "both:" + client->second);
  } else if (client != client_names_.end()) {
    answer("200", "OK", "client:" + client->second);
  } else {
    answer("200", "OK", "worker:" + worker->second);
  }
  return decision;
}

bool IsBuiltinService(std::string_view service) { return service.starts_with("courier."); }

namespace {
// The key name in a User-Id ("client:NAME" → "NAME").
std::string_view KeyName(std::string_view user_id) {
  const auto colon = user_id.find(':');
  return colon == std::string_view::npos ? std::string_view{} : user_id.substr(colon + 1);
}
}  // namespace

AccessPolicy::AccessPolicy(std::vector<CurveAllowEntry> clients, std::vector<CurveAllowEntry> workers)
    : enabled_(true) {
  std::map<std::string, std::string> client_by_key;
  for (auto& entry : clients) {
    clients_[entry.name] = entry.role == CurveRole::kOperator;
    client_by_key.emplace(entry.public_key, entry.name);
  }
  for (auto& entry : workers) {
    WorkerRights rights{std::move(entry.services), entry.max_capacity};
    // A key on both lists is named by its client entry in the User-Id ("both:NAME").
    if (const auto client = client_by_key.find(entry.public_key); client != client_by_key.end()) {
      both_[client->second] = rights;
    }
    workers_[entry.name] = std::move(rights);
  }
}

AccessPolicy AccessPolicy::Load(const std::string& clients_file, const std::string& workers_file) {
  std::vector<CurveAllowEntry> clients;
  std::vector<CurveAllowEntry> workers;
  if (!clients_file.empty()) clients = LoadCurveAllowEntries(clients_file, CurveRole::kClient);
  if (!workers_file.empty()) workers = LoadCurveAllowEntries(workers_file, CurveRole::kWorker);
  return AccessPolicy(std::move(clients), std::move(workers));
}

bool AccessPolicy::IsOperator(std::string_view user_id) const {
  if (!enabled_) return true;
  const PeerRole role = RoleFromUserId(user_id);
  if (role != PeerRole::kClient && role != PeerRole::kBoth) return false;
  const auto found = clients_.find(KeyName(user_id));
  return found != clients_.end() && found->second;
}

const AccessPolicy::WorkerRights* AccessPolicy::Worker(std::string_view user_id) const {
  const PeerRole role = RoleFromUserId(user_id);
  const auto& table = role == PeerRole::kBoth ? both_ : workers_;
  if (role != PeerRole::kWorker && role != PeerRole::kBoth) return nullptr;
  const auto found = table.find(KeyName(user_id));
  return found == table.end() ? nullptr : &found->second;
}

std::string AccessPolicy::ReadyProblem(std::string_view user_id, std::string_view service) const {
  if (!enabled_) return {};  // no CURVE: nothing to bind a service to
  const WorkerRights* rights = Worker(user_id);
  const std::string name(KeyName(user_id));
  if (rights == nullptr) return "CURVE key '" + name + "' is not on the workers allow-list";
  if (rights->services.empty()) {
    if (!IsBuiltinService(service)) return {};
    return "CURVE key '" + name + "' may not serve the built-in service '" + std::string(service) +
           "' (list it in the key's services in the workers allow-list)";
  }
  for (const auto& pattern : rights->services) {
    if (CurveServiceMatches(pattern, service)) return {};
  }
  return "CURVE key '" + name + "' may not serve '" + std::string(service) +
         "' (not among the services its workers allow-list entry lists)";
}

std::uint32_t AccessPolicy::CapacityCap(std::string_view user_id) const {
  const WorkerRights* rights = Worker(user_id);
  return rights == nullptr ? 0 : rights->max_capacity;
}

}  // namespace courier::broker
