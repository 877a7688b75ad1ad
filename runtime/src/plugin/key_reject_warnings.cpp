#include "key_reject_warnings.hpp"

namespace courier::detail {

std::optional<KeyRejectWarnings::Line> KeyRejectWarnings::Count(const std::string& service, std::uint32_t key_id,
                                                                ErrorCode code, Clock::time_point now) {
  auto key = std::make_pair(service, key_id);
  auto found = entries_.find(key);
  if (found == entries_.end()) {
    if (entries_.size() >= kMaxTracked) Forget(now);
    if (entries_.size() >= kMaxTracked) key.second = 0;  // still full: "other key ids"
    found = entries_.find(key);
    if (found == entries_.end()) {
      found = entries_.emplace(key, Entry{}).first;
      found->second.last = now - interval_;  // the first job of a pair is logged at once
    }
  }
  Entry& entry = found->second;
  ++entry.held;
  entry.code = code;
  if (now - entry.last < interval_) return std::nullopt;
  Line line{key.first, key.second, entry.code, entry.held};
  entry.last = now;
  entry.held = 0;
  return line;
}

std::vector<KeyRejectWarnings::Line> KeyRejectWarnings::Due(Clock::time_point now) {
  std::vector<Line> lines;
  for (auto& [key, entry] : entries_) {
    if (entry.held == 0 || now - entry.last < interval_) continue;
    lines.push_back(Line{key.first, key.second, entry.code, entry.held});
    entry.last = now;
    entry.held = 0;
  }
  Forget(now);
  return lines;
}

void KeyRejectWarnings::Forget(Clock::time_point now) {
  std::erase_if(entries_, [&](const auto& item) { return item.second.held == 0 && now - item.second.last >= interval_; });
}

}  // namespace courier::detail
