#include "wire/stages.hpp"

namespace courier::wire {
namespace {

constexpr std::array<std::string_view, kStageGroups> kGroupNames = {"request", "response", "error", "crypto",
                                                                    "load_balancing"};
constexpr std::array<std::string_view, 3> kProcesses = {"client", "broker", "worker"};

}  // namespace

std::string_view ToString(StageGroup group) noexcept {
  const auto index = static_cast<std::size_t>(group);
  return index < kGroupNames.size() ? kGroupNames[index] : "unknown";
}

std::optional<StageGroup> ParseStageGroup(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kGroupNames.size(); ++i) {
    if (kGroupNames[i] == name) return static_cast<StageGroup>(i);
  }
  return std::nullopt;
}

const StageInfo* FindStage(std::string_view process, std::string_view stage) noexcept {
  for (const StageInfo& info : kStages) {
    if (info.process == process && info.name == stage) return &info;
  }
  return nullptr;
}

std::optional<StageGroup> GroupOf(std::string_view process, std::string_view stage) noexcept {
  const StageInfo* info = FindStage(process, stage);
  if (info == nullptr) return std::nullopt;
  return info->group;
}

int ProcessOrder(std::string_view process) noexcept {
  for (std::size_t i = 0; i < kProcesses.size(); ++i) {
    if (kProcesses[i] == process) return static_cast<int>(i);
  }
  return static_cast<int>(kProcesses.size());
}

int StageOrder(std::string_view process, std::string_view stage) noexcept {
  int position = 0;
  for (const StageInfo& info : kStages) {
    if (info.process != process) continue;
    if (info.name == stage) return position;
    ++position;
  }
  return static_cast<int>(kStages.size());  // after every known stage of any process
}

}  // namespace courier::wire
