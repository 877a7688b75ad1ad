// zap.hpp — the broker's ZeroMQ Authentication Protocol handler (RFC 27/ZAP) for CURVE:
// admits a peer only if its public key is on the clients' or the workers' allow-list, and
// names its role in the User-Id ("client:NAME", "worker:NAME" or "both:NAME"), which the
// broker checks on every message so a client key cannot register a worker.
// Pure logic (frames in, frames out); the broker loop owns the inproc REP socket.
#pragma once

#include <map>
#include <string>
#include <vector>

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

}  // namespace courier::broker
