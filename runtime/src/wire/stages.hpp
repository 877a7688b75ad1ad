// wire/stages.hpp — the stage vocabulary of schemas/PROTOCOL.md §10.2: every stage a
// Courier process times, the process that reports it, its place in a job's path and the
// design's group it belongs to (request, response, error, crypto, load_balancing).
// Defined once here; the worker host's Stage names, the broker's and client's stage names,
// the collector's ordering, `courier metrics --by group` and the Prometheus `group` label
// all read it.
//
//   wire::StageGroup group = *wire::GroupOf("worker", "reply_verify");  // kResponse
//   wire::ToString(group);                                             // "response"
//
// Thread-safety: constant data and pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace courier::wire {

// The design's five groups of stages, in the order it lists them.
enum class StageGroup : std::uint8_t { kRequest, kResponse, kError, kCrypto, kLoadBalancing };
inline constexpr std::size_t kStageGroups = 5;
// Returns: "request", "response", "error", "crypto" or "load_balancing".
std::string_view ToString(StageGroup group) noexcept;
// Returns: the group named `name`, or std::nullopt.
std::optional<StageGroup> ParseStageGroup(std::string_view name) noexcept;

struct StageInfo {
  std::string_view process;  // "client", "broker" or "worker"
  std::string_view name;     // the stage name on the wire
  StageGroup group;
  std::string_view what;     // one line: what the duration spans
};

// Every known stage, by process in the order a job meets them (client, broker, worker) and
// within a process in the order a job goes through them.
inline constexpr std::array<StageInfo, 22> kStages{{
    {"client", "encode", StageGroup::kRequest, "request value to MessagePack"},
    {"client", "key", StageGroup::kCrypto, "finding the keyring's active key for a job"},
    {"client", "seal", StageGroup::kCrypto, "sealing the request"},
    {"client", "round_trip", StageGroup::kResponse, "first send to the answer"},
    {"client", "open", StageGroup::kCrypto, "opening the reply"},
    {"client", "decode", StageGroup::kResponse, "reply MessagePack to a value"},
    {"broker", "queue_wait", StageGroup::kLoadBalancing, "queued until dispatched"},
    {"broker", "lb_strategy", StageGroup::kLoadBalancing, "choosing a worker under the service's strategy"},
    {"broker", "dispatch", StageGroup::kLoadBalancing, "dispatched until the worker answered"},
    {"broker", "lb_monitor", StageGroup::kLoadBalancing, "one heartbeat and expiry pass (service \"*\")"},
    {"worker", "key", StageGroup::kCrypto, "the job's key lookup; reloading the key file after a rotation"},
    {"worker", "open", StageGroup::kCrypto, "opening the request"},
    {"worker", "parse", StageGroup::kRequest, "request MessagePack to a value"},
    {"worker", "verify", StageGroup::kRequest, "the request against the [request] schema"},
    {"worker", "handle", StageGroup::kRequest, "the handler"},
    {"worker", "convert", StageGroup::kResponse, "the reply to MessagePack"},
    {"worker", "reply_verify", StageGroup::kResponse, "the reply against the [reply] schema"},
    {"worker", "seal", StageGroup::kCrypto, "sealing the reply"},
    {"worker", "send", StageGroup::kResponse, "handing the answer to the broker socket"},
    {"worker", "error_capture", StageGroup::kError, "a failure until its error report is built"},
    {"worker", "error_send", StageGroup::kError, "a report handed to the reporter until a broker accepted it for courier.errors"},
    {"worker", "error_handle", StageGroup::kError, "the error sink storing and grouping one batch"},
}};

// Returns: the stage's entry, or nullptr for a stage the vocabulary does not know.
const StageInfo* FindStage(std::string_view process, std::string_view stage) noexcept;
// Returns: the stage's group, or std::nullopt for an unknown (process, stage).
std::optional<StageGroup> GroupOf(std::string_view process, std::string_view stage) noexcept;

// Returns: the position of `process` in the order a job meets them: client 0, broker 1,
// worker 2; any other process 3 (callers sort those alphabetically).
int ProcessOrder(std::string_view process) noexcept;
// Returns: the position of `stage` among `process`'s stages in kStages, or, for a stage the
// process is not known to time, a position after all of them (callers sort those
// alphabetically).
int StageOrder(std::string_view process, std::string_view stage) noexcept;

}  // namespace courier::wire
