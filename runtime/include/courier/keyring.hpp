// courier/keyring.hpp — payload keys and sealing (libsodium XChaCha20-Poly1305-IETF).
//
// A keyring holds one or more 32-byte keys, each with a numeric id (1..2^32-1). It seals
// with its active key and opens with any key it holds, so keys rotate without downtime:
// add the new key everywhere, make it active, retire the old one later.
//
// Key file (TOML, mode 0600 or stricter; anything readable by group or others is refused):
//   active = 2
//   [[key]]
//   id = 1
//   secret = "<64 hex digits>"
//   created_at = 1764300000
//
// Thread-safety: Seal and Open are const and safe to call from many threads; the
// mutating calls (AddKey, SetActive, Rotate) need exclusive access.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "courier/job.hpp"

namespace courier {

class Keyring {
 public:
  Keyring() = default;
  Keyring(const Keyring&) = delete;  // secrets are wiped on destruction; copy deliberately
  Keyring& operator=(const Keyring&) = delete;
  Keyring(Keyring&&) noexcept = default;
  Keyring& operator=(Keyring&&) noexcept = default;
  ~Keyring();

  // Returns: a keyring with one fresh random key, active, under a random id (below 2^31):
  // keyrings made apart never share an id.
  static Keyring Generate();
  // Returns: the keyring in `path`. Throws: Error(kConfig) naming the file and the reason
  // (missing, readable by others, malformed, no active key...).
  static Keyring Load(const std::filesystem::path& path);
  // Returns: the keyring at `path`, creating it with a fresh key (mode 0600, missing parent
  // directories 0700) if it does not exist yet. Safe when several processes start together
  // on one path: the file is created atomically and never replaced, so exactly one of them
  // creates it and all of them return what is on disk (the same keys).
  // Throws: Error(kIo) if it cannot be created; Error(kConfig) as Load.
  static Keyring LoadOrCreate(const std::filesystem::path& path);
  // Returns: $XDG_CONFIG_HOME/courier/keyring.toml (or ~/.config/courier/keyring.toml).
  static std::filesystem::path DefaultPath();

  // Writes the keyring with mode 0600, replacing any file at `path` atomically (a unique
  // temp file renamed over it): readers see the old file or the new one, never a mix, and
  // concurrent saves never interleave (the last rename wins). Throws: Error(kIo).
  void Save(const std::filesystem::path& path) const;

  // Adds a key (32 raw bytes). Throws: Error(kConfig) on a duplicate id or a bad size.
  void AddKey(std::uint32_t id, std::string_view secret);
  void SetActive(std::uint32_t id);
  // Adds a fresh key with the next free id and makes it active. Returns: its id.
  std::uint32_t Rotate();
  // Forgets a key that is not active. Returns: whether it was held.
  bool RemoveKey(std::uint32_t id);

  std::uint32_t active_key_id() const { return active_; }
  bool Holds(std::uint32_t id) const { return keys_.count(id) != 0; }
  std::size_t size() const { return keys_.size(); }
  // Returns: the ids of the keys held, ascending.
  std::vector<std::uint32_t> ids() const;
  // Returns: the job id for an idempotency key: a MAC of it under a subkey of the active
  // key, stable for as long as that key is active, and unpredictable to anyone without it
  // (a public hash would let another client compute a victim's job id in advance).
  // Throws: Error(kConfig) if the keyring is empty.
  JobId JobIdFor(std::string_view idempotency_key) const;
  // Returns: 8 bytes that name key `id` without revealing it (BLAKE2b keyed with the
  // secret, over a fixed label): two holders of one id compare fingerprints to tell
  // whether they hold the same key. Throws: Error(kConfig) if the id is not held.
  std::string Fingerprint(std::uint32_t id) const;

  // Seals `plaintext` for `envelope`: sets its key_id and a fresh random nonce, then
  // encrypts with the envelope's wire bytes (attempt zeroed) as associated data.
  // Returns: the envelope's wire bytes and the ciphertext.
  // Throws: Error(kConfig) if the keyring is empty; Error(kBadRequest) for a bad envelope.
  struct Sealed {
    std::string envelope;
    std::string payload;
  };
  Sealed Seal(Envelope envelope, std::string_view plaintext) const;

  // Opens a payload sealed for the envelope whose wire bytes are `envelope_bytes`.
  // Returns: the plaintext. Throws: Error(kUnknownKey) if the key id is not held,
  // Error(kUnauthenticated) if the tag does not verify, Error(kBadRequest) if malformed.
  std::string Open(std::string_view envelope_bytes, std::string_view ciphertext) const;

 private:
  std::map<std::uint32_t, std::string> keys_;  // id → 32 secret bytes
  std::uint32_t active_ = 0;
};

// Writes a keyring file with one fresh key, refusing to overwrite an existing file, even
// one created by another process at the same moment (of several racing calls exactly one
// succeeds). Returns: the new key's id. Throws: Error(kIo) (also when the file exists).
std::uint32_t GenerateKeyFile(const std::filesystem::path& path);

}  // namespace courier
