// courier/curve.hpp — CurveZMQ transport keys: who may connect to a broker, in which role.
//
// Key pair file (TOML, mode 0600 or stricter — it holds a secret):
//   name = "worker-a"                 # shown in logs and as the sender of error records
//   public = "<40 Z85 characters>"
//   secret = "<40 Z85 characters>"
// Allow-list file (TOML; public keys only, any mode): one entry per peer, either the key
// alone (the file's role, no limits) or an inline table binding the key to a role, and for
// worker keys the services it may serve and a capacity cap:
//   worker-a = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//   worker-b = { key = "<40 Z85 characters>", services = ["echo", "image.*"], max_capacity = 8 }
//   sink-1   = { key = "<...>", services = ["courier.errors"] }          # in the workers file
//   ops-1    = { key = "<...>", role = "operator" }                      # in the clients file
// Table keys: `key` (required), `role` ("client" or "operator" in the clients file,
// "worker" in the workers file; default the file's role), `services` (worker entries: exact
// names or "prefix.*" patterns; default none listed = any service except the built-in
// courier.* ones, which must be listed by name or by "courier.*"), `max_capacity` (worker
// entries: the highest capacity its READY and CREDIT may claim, 1..1000000; default none).
// Public key file (any mode): the 40 Z85 characters alone on a line, or a TOML file with a
// `public = "..."` key (a key pair file works too, but only its public half is read).
//
// Peers that connect to a broker (client SDK, reporters, worker host, CLI) describe their
// side in CurveOptions, read from the `[security]` table of their TOML file:
//   [security]
//   curve = true                       # default false: plain TCP
//   server_key = "<40 Z85 characters>" # the broker's public key, or:
//   server_key_file = "broker.pub"     # a public key file (relative: to the TOML file)
//   key_file = "client.key"            # this peer's key pair (courier keygen --curve), 0600
// Every broker a peer talks to must use the same server key pair.
//
// Thread-safety: plain functions and values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace courier {

struct CurveKeyPair {
  std::string name;
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

// Returns: a fresh key pair (zmq_curve_keypair). Throws: Error(kInternal) if libzmq was
// built without CURVE.
CurveKeyPair GenerateCurveKeyPair(std::string name);
// Writes the pair with mode 0600, refusing to overwrite. Throws: Error(kIo).
void SaveCurveKeyPair(const std::filesystem::path& path, const CurveKeyPair& pair);
// Throws: Error(kConfig) naming the file: missing, readable by others, malformed key.
CurveKeyPair LoadCurveKeyPair(const std::filesystem::path& path);
// Returns: name → public key, for both entry forms. Throws: Error(kConfig) naming the file,
// line and name.
std::map<std::string, std::string> LoadCurveAllowList(const std::filesystem::path& path);

// What an allow-list entry grants (see "Allow-list file" above).
enum class CurveRole { kClient, kWorker, kOperator };
struct CurveAllowEntry {
  std::string name;
  std::string public_key;                 // Z85, 40 characters
  CurveRole role = CurveRole::kClient;    // the entry's `role`, else the file's
  std::vector<std::string> services;      // worker entries: names or "prefix.*"; empty = any non-builtin
  std::uint32_t max_capacity = 0;         // worker entries: 0 = no cap
};
// Returns: the entries of an allow-list whose peers have `file_role` (kClient for the
// clients file, kWorker for the workers file), in name order.
// Throws: Error(kConfig) naming the file, line and name: a malformed key, an unknown table
// key, a role the file cannot grant (operator outside the clients file, worker outside the
// workers file), services or max_capacity on a non-worker entry, a malformed pattern.
std::vector<CurveAllowEntry> LoadCurveAllowEntries(const std::filesystem::path& path, CurveRole file_role);
// Returns: whether `name` matches `pattern` ("name" exactly, or "prefix.*": any name that
// starts with "prefix.").
bool CurveServiceMatches(std::string_view pattern, std::string_view name);
// Returns: whether `key` is 40 valid Z85 characters decoding to 32 bytes.
bool IsCurveKey(const std::string& key);
// Returns: the Z85 public key held in `path` (see "Public key file" above).
// Throws: Error(kConfig) naming the file: missing, or no valid key in it.
std::string LoadCurvePublicKey(const std::filesystem::path& path);
// Returns: `key_or_file` itself if it is a Z85 key, else the public key in the file it names.
// Throws: Error(kConfig) as LoadCurvePublicKey.
std::string ResolveCurvePublicKey(const std::string& key_or_file);

class ConfigSection;

// The CURVE settings of a peer that connects to brokers. CURVE is off while
// server_public_key is empty (the default).
struct CurveOptions {
  // The brokers' public key, Z85 (40 characters). Default empty: CURVE off.
  std::string server_public_key;
  // This peer's key pair file (mode 0600; `courier keygen --curve`). Required with CURVE
  // unless `keys` is set. Its name is what the broker logs and records as the sender.
  std::filesystem::path key_file;
  // The key pair itself; when set, key_file is not read. Default none.
  std::optional<CurveKeyPair> keys;

  bool enabled() const noexcept { return !server_public_key.empty(); }
  // Returns: a copy whose `keys` are loaded (from key_file unless already set), so sockets
  // can be made without touching the file again; unchanged if CURVE is off.
  // Throws: Error(kConfig): a malformed server key, no key pair, a key pair without a
  // server key, or a key file that is missing, malformed or readable by others.
  CurveOptions Resolved() const;

  // Returns: the settings of a `[security]` table (see above); `curve = false` or no table
  // means off. Relative paths are resolved against the directory of the section's file.
  // Throws: Error(kConfig) naming file, line and key (unknown keys included; key files
  // are only checked by Resolved()).
  static CurveOptions FromConfig(const ConfigSection& security);
};

}  // namespace courier
