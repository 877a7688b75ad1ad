// worker_support.hpp — helpers for the worker host's integration tests: a raw-frame CRC01
// client (no client SDK), a fake broker (a bare ROUTER speaking CRW01), and starters for
// real courier-broker and courier-worker processes with short heartbeats.
// Thread-safety: each object belongs to the test's thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/keyring.hpp"
#include "courier/value.hpp"
#include "process.hpp"
#include "protocol.hpp"

namespace courier::test {

using namespace std::chrono_literals;

// Heartbeat used by both brokers and workers in these tests: short, so restarts are quick,
// with enough liveness that a loaded 2-core machine does not flap.
inline constexpr auto kTestHeartbeat = 200ms;
inline constexpr int kTestLiveness = 5;

struct SubmitOptions {
  std::optional<JobId> job_id;           // default: a fresh random id
  std::chrono::milliseconds deadline = 20s;
  bool seal = true;
  const Keyring* keyring = nullptr;      // default: the client's
  bool tamper = false;                   // flip a bit of the sealed payload
  std::uint32_t max_attempts = 3;
};

struct Answer {
  JobId job_id;
  bool ok = false;         // REPLY (true) or ERROR (false)
  Value reply;             // REPLY: the opened payload
  std::uint32_t attempt = 0;
  std::uint32_t key_id = 0;
  ErrorCode code = ErrorCode::kInternal;  // ERROR
  std::string message;
};

// A Courier client made of raw frames: DEALER → broker, [empty][CRC01][command]...
class RawClient {
 public:
  RawClient(const std::string& endpoint, const Keyring& keyring);
  JobId Submit(const std::string& service, const Value& request, const SubmitOptions& options = {});
  // Returns: the next REPLY or ERROR (ACCEPT and others are skipped), or nullopt on timeout.
  std::optional<Answer> Receive(std::chrono::milliseconds timeout);
  // Submits and waits for the answer to that job. Fails the test (and returns an ERROR
  // answer with message "timeout") if none comes within `timeout`.
  Answer Call(const std::string& service, const Value& request, const SubmitOptions& options = {},
              std::chrono::milliseconds timeout = 20s);
  // Waits for the answers to `ids` (any order). Returns: them, in the order of `ids`.
  std::vector<Answer> Collect(const std::vector<JobId>& ids, std::chrono::milliseconds timeout = 20s);

 private:
  const Keyring& keyring_;
  zmq::context_t context_;
  zmq::socket_t socket_;
};

// A ROUTER standing in for a broker, to test the worker's side of CRW01 exactly.
class FakeBroker {
 public:
  explicit FakeBroker(const std::string& endpoint);
  struct Message {
    std::string identity;
    detail::WorkerCommand command{};
    std::vector<std::string> bodies;
  };
  // Returns: the next well-formed CRW01 message (HEARTBEATs skipped unless asked), or nullopt.
  std::optional<Message> Receive(std::chrono::milliseconds timeout, bool skip_heartbeats = true);
  // Returns: the next message with `command`, skipping others, or nullopt on timeout.
  std::optional<Message> Expect(detail::WorkerCommand command, std::chrono::milliseconds timeout);
  // Sends to a worker; does nothing if that worker is gone.
  void Send(const std::string& identity, detail::WorkerCommand command, const std::vector<std::string>& bodies = {});
  void Close();

 private:
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
};

// Writes a keyring file (mode 0600) into `dir`. Returns: its path; `keyring` gets its keys.
std::filesystem::path WriteKeyring(const TempDir& dir, Keyring& keyring, const std::string& name = "keyring.toml");

// Starts courier-broker bound to `endpoint` with the test heartbeat; waits until it listens.
std::unique_ptr<ChildProcess> StartBroker(const TempDir& dir, const std::string& endpoint,
                                          const std::string& name = "broker");

// Starts courier-worker with `config` (TOML) written to dir/NAME.toml; waits until it serves.
std::unique_ptr<ChildProcess> StartWorker(const TempDir& dir, const std::string& config,
                                          const std::string& name = "worker",
                                          std::vector<std::string> extra_args = {});

// Returns: a worker.toml for `brokers` with the test heartbeat, `keyring`, `threads`, and
// `services` (TOML tables appended verbatim).
std::string WorkerConfig(const std::vector<std::string>& brokers, const std::filesystem::path& keyring,
                         const std::string& services, int threads = 2, const std::string& extra = "");

// Returns: how often `text` occurs in the process's log.
std::size_t CountInLog(const ChildProcess& process, const std::string& text);

}  // namespace courier::test
