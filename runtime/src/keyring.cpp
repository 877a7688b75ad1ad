#include "courier/keyring.hpp"

#include <sodium.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <toml++/toml.h>

#include "courier/error.hpp"
#include "envelope_codec.hpp"
#include "private_file.hpp"
#include "protocol.hpp"
#include "random_bytes.hpp"
#include "sodium_init.hpp"

namespace courier {

namespace detail {
void EnsureSodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw Error(ErrorCode::kInternal, "libsodium failed to initialise");
}
}  // namespace detail

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Fail(const fs::path& path, const std::string& why) {
  throw Error(ErrorCode::kConfig, "key file " + path.string() + ": " + why);
}

std::string RandomSecret() {
  std::string secret(detail::kKeyBytes, '\0');
  crypto_aead_xchacha20poly1305_ietf_keygen(reinterpret_cast<unsigned char*>(secret.data()));
  return secret;
}

std::string ToHex(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  out.pop_back();
  return out;
}

// Wipes a string holding secrets when it goes out of scope, thrown through or not.
class WipeOnExit {
 public:
  explicit WipeOnExit(std::string& text) : text_(text) {}
  ~WipeOnExit() { sodium_memzero(text_.data(), text_.size()); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  std::string& text_;
};

// Returns: the key file text for `keys` (id -> secret) with `active` active.
std::string KeyFileText(std::uint32_t active, const std::map<std::uint32_t, std::string>& keys) {
  const std::string created_at = std::to_string(NowUnixMs() / 1000);
  std::string text;
  text.reserve(128 + keys.size() * (96 + detail::kKeyBytes * 2));  // one buffer: no stray copies
  text += "# Courier payload keyring. Keep it private (mode 0600).\n";
  text += "active = " + std::to_string(active) + "\n";
  for (const auto& [id, secret] : keys) {
    std::string hex = ToHex(secret);
    const WipeOnExit wipe_hex(hex);
    text += "\n[[key]]\nid = " + std::to_string(id) + "\nsecret = \"";
    text += hex;
    text += "\"\ncreated_at = " + created_at + "\n";
  }
  return text;
}

// Returns: the id of a new keyring's first key: random, so keyrings made apart never share
// an id (a job sealed with another keyring's key fails unknown_key naming it, not
// unauthenticated under a shared "key 1"), below 2^31 so rotations (id + 1) have room.
std::uint32_t FirstKeyId() {
  detail::EnsureSodium();
  return randombytes_uniform(0x7fffffffU) + 1;
}

// Creates `path` holding one fresh key (FirstKeyId, active) unless a file is already there,
// even if other processes race to create it. Returns: the new key's id, or 0 when the file
// was there already. Throws: Error(kIo).
std::uint32_t CreateFreshKeyFile(const fs::path& path) {
  detail::EnsureSodium();
  const std::uint32_t id = FirstKeyId();
  std::map<std::uint32_t, std::string> keys;
  std::string& secret = keys[id];
  const WipeOnExit wipe_secret(secret);
  secret = RandomSecret();
  std::string text = KeyFileText(id, keys);
  const WipeOnExit wipe_text(text);
  return detail::CreatePrivateFile(path, text) ? id : 0;
}

// Creates the missing directories of `dir` with mode 0700; leaves existing ones alone.
// Safe when other processes create the same directories at once. Throws: Error(kIo).
void CreatePrivateDirectories(const fs::path& dir) {
  if (dir.empty()) return;
  struct stat info {};
  if (::stat(dir.c_str(), &info) == 0) {
    if (!S_ISDIR(info.st_mode)) {
      throw Error(ErrorCode::kIo, "cannot create directory " + dir.string() + ": a file is in the way");
    }
    return;
  }
  if (const fs::path parent = dir.parent_path(); parent != dir) CreatePrivateDirectories(parent);
  if (::mkdir(dir.c_str(), 0700) == 0) {
    ::chmod(dir.c_str(), 0700);  // whatever the umask
  } else if (errno != EEXIST) {
    throw Error(ErrorCode::kIo, "cannot create directory " + dir.string() + ": " + std::strerror(errno));
  }
}

}  // namespace

Keyring::~Keyring() {
  for (auto& [id, secret] : keys_) sodium_memzero(secret.data(), secret.size());
}

Keyring Keyring::Generate() {
  detail::EnsureSodium();
  Keyring keyring;
  const std::uint32_t id = FirstKeyId();
  keyring.AddKey(id, RandomSecret());
  keyring.SetActive(id);
  return keyring;
}

Keyring Keyring::Load(const fs::path& path) {
  detail::EnsureSodium();
  if (!fs::exists(path)) Fail(path, "does not exist (create one with `courier keygen`)");
  detail::CheckPrivateFile(path, "key file");
  toml::table table;
  try {
    table = toml::parse_file(path.string());
  } catch (const toml::parse_error& error) {
    Fail(path, "line " + std::to_string(error.source().begin.line) + ": " +
                   std::string(error.description()));
  }
  Keyring keyring;
  for (const auto& [key, node] : table) {
    if (key != "active" && key != "key") Fail(path, "unknown key '" + std::string(key.str()) + "'");
  }
  const auto* keys = table["key"].as_array();
  if (keys == nullptr || keys->empty()) Fail(path, "no [[key]] entries");
  for (const auto& node : *keys) {
    const auto* entry = node.as_table();
    if (entry == nullptr) Fail(path, "[[key]] must be a table");
    const auto line = std::to_string(entry->source().begin.line);
    for (const auto& [key, value] : *entry) {
      if (key != "id" && key != "secret" && key != "created_at") {
        Fail(path, "line " + line + ": unknown key '" + std::string(key.str()) + "' in [[key]]");
      }
    }
    const auto id = (*entry)["id"].value<std::int64_t>();
    if (!id || *id < 1 || *id > UINT32_MAX) Fail(path, "line " + line + ": id must be an integer in [1, 4294967295]");
    const auto hex = (*entry)["secret"].value<std::string>();
    if (!hex || hex->size() != detail::kKeyBytes * 2) {
      Fail(path, "line " + line + ": secret must be " + std::to_string(detail::kKeyBytes * 2) + " hex digits");
    }
    std::string secret(detail::kKeyBytes, '\0');
    std::size_t written = 0;
    if (sodium_hex2bin(reinterpret_cast<unsigned char*>(secret.data()), secret.size(), hex->data(),
                       hex->size(), nullptr, &written, nullptr) != 0 ||
        written != detail::kKeyBytes) {
      Fail(path, "line " + line + ": secret is not hexadecimal");
    }
    if (keyring.Holds(static_cast<std::uint32_t>(*id))) Fail(path, "line " + line + ": duplicate key id " + std::to_string(*id));
    keyring.AddKey(static_cast<std::uint32_t>(*id), secret);
    sodium_memzero(secret.data(), secret.size());
  }
  const auto active = table["active"].value<std::int64_t>();
  if (!active) Fail(path, "'active' (the id of the key to seal with) is missing");
  if (*active < 1 || *active > UINT32_MAX || !keyring.Holds(static_cast<std::uint32_t>(*active))) {
    Fail(path, "active key " + std::to_string(*active) + " is not among its [[key]] entries");
  }
  keyring.SetActive(static_cast<std::uint32_t>(*active));
  return keyring;
}

Keyring Keyring::LoadOrCreate(const fs::path& path) {
  if (!fs::exists(path)) {
    CreatePrivateDirectories(path.parent_path());
    // 0 when another process created it first: its file wins. Either way what is
    // returned is what is on disk, never a key that exists only in this process.
    CreateFreshKeyFile(path);
  }
  return Load(path);
}

fs::path Keyring::DefaultPath() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    return fs::path(xdg) / "courier" / "keyring.toml";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".config" / "courier" /
         "keyring.toml";
}

void Keyring::Save(const fs::path& path) const {
  std::string text = KeyFileText(active_, keys_);
  const WipeOnExit wipe_text(text);
  detail::WritePrivateFile(path, text);
}

void Keyring::AddKey(std::uint32_t id, std::string_view secret) {
  if (id == kUnsealedKeyId) throw Error(ErrorCode::kConfig, "key id 0 is reserved for unsealed payloads");
  if (secret.size() != detail::kKeyBytes) {
    throw Error(ErrorCode::kConfig, "a key must be " + std::to_string(detail::kKeyBytes) + " bytes");
  }
  if (Holds(id)) throw Error(ErrorCode::kConfig, "duplicate key id " + std::to_string(id));
  keys_.emplace(id, std::string(secret));
}

void Keyring::SetActive(std::uint32_t id) {
  if (!Holds(id)) throw Error(ErrorCode::kConfig, "no key with id " + std::to_string(id));
  active_ = id;
}

std::uint32_t Keyring::Rotate() {
  detail::EnsureSodium();
  const std::uint32_t id = keys_.empty() ? 1 : keys_.rbegin()->first + 1;
  AddKey(id, RandomSecret());
  SetActive(id);
  return id;
}

bool Keyring::RemoveKey(std::uint32_t id) {
  if (id == active_) throw Error(ErrorCode::kConfig, "cannot remove the active key " + std::to_string(id));
  const auto found = keys_.find(id);
  if (found == keys_.end()) return false;
  sodium_memzero(found->second.data(), found->second.size());
  keys_.erase(found);
  return true;
}

JobId Keyring::JobIdFor(std::string_view idempotency_key) const {
  const auto key = keys_.find(active_);
  if (key == keys_.end()) throw Error(ErrorCode::kConfig, "the keyring has no active key");
  // A subkey of its own (KDF, context "idempotk"): the payload key itself never keys
  // anything but the AEAD.
  unsigned char subkey[crypto_generichash_KEYBYTES];
  static_assert(crypto_kdf_KEYBYTES == detail::kKeyBytes);
  crypto_kdf_derive_from_key(subkey, sizeof subkey, 1, "idempotk",
                             reinterpret_cast<const unsigned char*>(key->second.data()));
  JobId id;
  crypto_generichash(id.bytes.data(), id.bytes.size(), reinterpret_cast<const unsigned char*>(idempotency_key.data()),
                     idempotency_key.size(), subkey, sizeof subkey);
  sodium_memzero(subkey, sizeof subkey);
  return id;
}

std::vector<std::uint32_t> Keyring::ids() const {
  std::vector<std::uint32_t> out;
  out.reserve(keys_.size());
  for (const auto& [id, secret] : keys_) out.push_back(id);
  return out;
}

std::string Keyring::Fingerprint(std::uint32_t id) const {
  const auto key = keys_.find(id);
  if (key == keys_.end()) throw Error(ErrorCode::kConfig, "no key with id " + std::to_string(id));
  static constexpr std::string_view kLabel = "courier key fingerprint v1";
  std::string out(8, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size(),
                     reinterpret_cast<const unsigned char*>(key->second.data()), key->second.size());
  return out;
}

Keyring::Sealed Keyring::Seal(Envelope envelope, std::string_view plaintext) const {
  const auto key = keys_.find(active_);
  if (key == keys_.end()) throw Error(ErrorCode::kConfig, "the keyring has no active key");
  envelope.key_id = active_;
  detail::RandomBytes(envelope.nonce.data(), envelope.nonce.size());
  Sealed sealed;
  sealed.envelope = detail::EncodeEnvelope(envelope);
  char aad_buffer[detail::kMaxEnvelopeBytes];
  const std::string_view aad = detail::AssociatedData(sealed.envelope, aad_buffer);
  sealed.payload.resize(plaintext.size() + detail::kTagBytes);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(sealed.payload.data()), &written,
      reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), nullptr,
      envelope.nonce.data(), reinterpret_cast<const unsigned char*>(key->second.data()));
  sealed.payload.resize(written);
  return sealed;
}

std::string Keyring::Open(std::string_view envelope_bytes, std::string_view ciphertext) const {
  const detail::EnvelopeView envelope = detail::DecodeEnvelope(envelope_bytes);
  if (envelope.key_id == kUnsealedKeyId) {
    throw Error(ErrorCode::kUnauthenticated, "payload is not sealed (key id 0)");
  }
  const auto key = keys_.find(envelope.key_id);
  if (key == keys_.end()) {
    throw Error(ErrorCode::kUnknownKey,
                "payload is sealed with key id " + std::to_string(envelope.key_id) +
                    ", which this keyring does not hold");
  }
  if (ciphertext.size() < detail::kTagBytes) {
    throw Error(ErrorCode::kUnauthenticated, "sealed payload is shorter than its tag");
  }
  char aad_buffer[detail::kMaxEnvelopeBytes];
  const std::string_view aad = detail::AssociatedData(envelope_bytes, aad_buffer);
  std::string plaintext(ciphertext.size() - detail::kTagBytes, '\0');
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plaintext.data()), &written, nullptr,
          reinterpret_cast<const unsigned char*>(ciphertext.data()), ciphertext.size(),
          reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), envelope.nonce.data(),
          reinterpret_cast<const unsigned char*>(key->second.data())) != 0) {
    throw Error(ErrorCode::kUnauthenticated,
                "payload failed authentication (tampered, replayed under another envelope, or "
                "sealed with a different key " + std::to_string(envelope.key_id) + ")");
  }
  plaintext.resize(written);
  return plaintext;
}

std::uint32_t GenerateKeyFile(const fs::path& path) {
  const std::uint32_t id = CreateFreshKeyFile(path);
  if (id == 0) throw Error(ErrorCode::kIo, path.string() + " already exists; refusing to overwrite a key file");
  return id;
}

}  // namespace courier
