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

}  // namespace courier::broker
