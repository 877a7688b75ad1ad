// courier/curve.hpp — CurveZMQ transport keys: who may connect to a broker, in which role.
//
// Key pair file (TOML, mode 0600 or stricter — it holds a secret):
//   name = "worker-a"                 # shown in logs and as the sender of error records
//   public = "<40 Z85 characters>"
//   secret = "<40 Z85 characters>"
// Allow-list file (TOML; public keys only, any mode): one `name = "<public key>"` per peer.
//   worker-a = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//
// Thread-safety: plain functions and values.
#pragma once

#include <filesystem>
#include <map>
#include <string>

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
// Returns: name → public key. Throws: Error(kConfig) naming the file, line and name.
std::map<std::string, std::string> LoadCurveAllowList(const std::filesystem::path& path);
// Returns: whether `key` is 40 valid Z85 characters decoding to 32 bytes.
bool IsCurveKey(const std::string& key);

}  // namespace courier
