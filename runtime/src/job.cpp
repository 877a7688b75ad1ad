#include "courier/job.hpp"

#include <sodium.h>

#include <chrono>
#include <cstring>

#include "random_bytes.hpp"
#include "sodium_init.hpp"

namespace courier {

JobId JobId::Random() {
  JobId id;
  detail::RandomBytes(id.bytes.data(), id.bytes.size());
  return id;
}

std::optional<JobId> JobId::FromHex(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  JobId id;
  std::size_t written = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(id.bytes.data(), id.bytes.size(), hex.data(), hex.size(), nullptr, &written,
                     &end) != 0 ||
      written != id.bytes.size() || end != hex.data() + hex.size()) {
    return std::nullopt;
  }
  return id;
}

std::optional<JobId> JobId::FromBytes(std::string_view raw) {
  if (raw.size() != 16) return std::nullopt;
  JobId id;
  std::memcpy(id.bytes.data(), raw.data(), raw.size());
  return id;
}

std::string JobId::Hex() const {
  char out[33];
  sodium_bin2hex(out, sizeof out, bytes.data(), bytes.size());
  return std::string(out, 32);
}

bool JobId::IsZero() const {
  for (const auto byte : bytes) {
    if (byte != 0) return false;
  }
  return true;
}

std::size_t JobIdHash::operator()(const JobId& id) const noexcept {
  // Ids are random (or hashed), so any 8 of their bytes are already a good hash.
  std::size_t value;
  std::memcpy(&value, id.bytes.data(), sizeof value);
  return value;
}

std::uint64_t NowUnixMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace courier
