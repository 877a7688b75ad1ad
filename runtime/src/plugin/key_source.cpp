#include "key_source.hpp"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

namespace courier::detail {

std::unique_ptr<KeySource> KeySource::FromFile(std::filesystem::path path) {
  // Stamp first: if the file is replaced between the stat and the load, the next
  // ReloadIfChanged sees a stamp that differs and reads it again.
  const std::optional<Stamp> stamp = StampOf(path);
  auto source = std::make_unique<KeySource>(std::make_shared<const Keyring>(Keyring::Load(path)));
  source->path_ = std::move(path);
  source->stamp_ = stamp;
  return source;
}

KeySource::KeySource(std::shared_ptr<const Keyring> keyring) : current_(std::move(keyring)) {}

std::optional<KeySource::Stamp> KeySource::StampOf(const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return Stamp{static_cast<std::uint64_t>(info.st_dev), static_cast<std::uint64_t>(info.st_ino),
               static_cast<std::uint64_t>(info.st_size),
               static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec};
}

bool KeySource::FileChanged() const {
  if (path_.empty()) return false;
  const std::optional<Stamp> now = StampOf(path_);
  std::lock_guard lock(mutex_);
  return now.has_value() && now != stamp_;
}

bool KeySource::ReloadIfChanged() {
  if (path_.empty()) return false;
  std::lock_guard lock(mutex_);
  const std::optional<Stamp> now = StampOf(path_);
  if (!now || now == stamp_) return false;
  try {
    auto fresh = std::make_shared<const Keyring>(Keyring::Load(path_));
    stamp_ = now;
    current_.store(std::move(fresh), std::memory_order_release);
    spdlog::warn("key file {} changed on disk: reloaded it", path_.string());
    return true;
  } catch (const std::exception& e) {
    stamp_ = now;  // do not re-read a broken file for every job; the next change is tried
    spdlog::error("key file {} changed but cannot be loaded; keeping the keys in use: {}", path_.string(), e.what());
    return false;
  }
}

}  // namespace courier::detail
