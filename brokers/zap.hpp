// zap.hpp — the broker's ZeroMQ Authentication Protocol handler (RFC 27/ZAP) for CURVE:
// admits a peer only if its public key is on the clients' or the workers' allow-list, and
// names its role in the User-Id ("client:NAME", "worker:NAME" or "both:NAME"), which the
// broker checks on every message so a client key cannot register a worker.
// Pure logic (frames in, frames out); the broker loop owns the inproc REP socket.
//
// AccessPolicy: what each admitted key may do beyond its role, from its allow-list entry
// (courier/curve.hpp), looked up by the User-Id's key name: operator keys, the services a
// worker key may serve, its capacity cap. Without CURVE (empty User-Id) it grants what the
// broker always granted; built-in courier.* services then take any READY.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "courier/curve.hpp"

namespace courier::broker {

enum class PeerRole { kAny, kClient, kWorker, kBoth };

// Returns: the role a User-Id names (kAny for an empty one: no CURVE).
PeerRole RoleFromUserId(std::string_view user_id);

class ZapHandler {
 public:
  ZapHandler(std::map<std::string, std::string> clients, std::map<std::string, std::string> workers);

  struct Decision {
    std::vector<std::string> reply;  // the ZAP reply frames
    bool admitted = false;
    std::string key;      // the peer's public key, Z85 (for logs)
    std::string address;  // the peer's IP address
  };
  // Answers one ZAP request (its frames). Malformed requests are refused with 400.
  Decision Handle(const std::vector<std::string>& request) const;

 private:
  std::map<std::string, std::string> client_names_;  // public key (Z85) → name
  std::map<std::string, std::string> worker_names_;
};

// Returns: whether `service` is one of the broker's built-in services (courier.errors,
// courier.metrics, any courier.* name): only keys that list it may serve it.
bool IsBuiltinService(std::string_view service);

class AccessPolicy {
 public:
  // No CURVE: every check passes.
  AccessPolicy() = default;
  // Returns: whether this is a CURVE policy (false: the default, which grants all).
  bool enabled() const { return enabled_; }
  // `clients` and `workers` are the two allow-lists' entries (LoadCurveAllowEntries).
  AccessPolicy(std::vector<CurveAllowEntry> clients, std::vector<CurveAllowEntry> workers);
  // Returns: the policy of the files named in [security] (either may be empty: no keys).
  // Throws: Error(kConfig) as LoadCurveAllowEntries.
  static AccessPolicy Load(const std::string& clients_file, const std::string& workers_file);

  // Returns: whether the peer named by `user_id` may ask management queries and query or
  // replay courier.errors: an operator key, or anyone without CURVE. With CURVE, a peer
  // without a User-Id is granted nothing.
  bool IsOperator(std::string_view user_id) const;
  // Returns: why the peer may not serve `service` (empty: it may). With CURVE, a worker
  // key serves what its entry lists, or any non-builtin service if it lists none.
  std::string ReadyProblem(std::string_view user_id, std::string_view service) const;
  // Returns: the peer's capacity cap (0: none).
  std::uint32_t CapacityCap(std::string_view user_id) const;

 private:
  struct WorkerRights {
    std::vector<std::string> services;
    std::uint32_t max_capacity = 0;
  };
  const WorkerRights* Worker(std::string_view user_id) const;

  bool enabled_ = false;

  std::map<std::string, bool, std::less<>> clients_;             // name → operator
  std::map<std::string, WorkerRights, std::less<>> workers_;     // name → rights
  std::map<std::string, WorkerRights, std::less<>> both_;        // client name → rights of the same key's worker entry
};

}  // namespace courier::broker
