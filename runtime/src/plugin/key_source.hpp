// key_source.hpp — the worker host's payload keyring, re-read when its file changes.
//
// A host must never answer a terminal error caused by its own configuration: when a
// payload does not open, the key file may have been replaced (a rotation, or a race at
// first start that another process won). ReloadIfChanged() re-reads the file when its
// identity (device, inode, size, modification time) differs from the one loaded, so the
// caller can try again with what is on disk now.
// Thread-safety: Current() and ReloadIfChanged() from any thread; a keyring handed out by
// Current() stays valid for as long as the caller holds it.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>

#include "courier/keyring.hpp"

namespace courier::detail {

class KeySource {
 public:
  // A keyring loaded from `path` (Keyring::Load), re-read by ReloadIfChanged.
  // Throws: Error(kConfig) as Keyring::Load does.
  static std::unique_ptr<KeySource> FromFile(std::filesystem::path path);
  // A fixed keyring (tests, hosts configured in code): ReloadIfChanged never reloads.
  explicit KeySource(std::shared_ptr<const Keyring> keyring);

  std::shared_ptr<const Keyring> Current() const { return current_.load(std::memory_order_acquire); }
  // Returns: true if the file changed since it was loaded and now holds a valid keyring,
  // which Current() returns from now on. A file that changed into something invalid is
  // logged and the keyring in use is kept.
  bool ReloadIfChanged();
  // Returns: whether the file differs from the one loaded (cheap: one stat).
  bool FileChanged() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Stamp {
    std::uint64_t device = 0, inode = 0, size = 0;
    std::int64_t modified_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  static std::optional<Stamp> StampOf(const std::filesystem::path& path);

  std::filesystem::path path_;
  std::atomic<std::shared_ptr<const Keyring>> current_;
  mutable std::mutex mutex_;  // serialises reloads
  std::optional<Stamp> stamp_;
};

}  // namespace courier::detail
