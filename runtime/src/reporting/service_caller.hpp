// service_caller.hpp — a small synchronous CRC01 client for tools: the `courier errors` and
// `courier metrics` commands query the error sink and the collector through it, and the
// error sink replays dead letters with it (exact frames, no key needed).
//
//   detail::ServiceCaller caller({.brokers = {"tcp://127.0.0.1:5555"}});
//   Value rows = caller.Call("courier.errors", Value::Object({{"op", "list"}}), 10s);
//
// Each call is one job: SUBMIT to the first broker, with a PING beside it. A broker that
// sends nothing at all (not even the PONG) for failover_timeout is skipped and the same
// frames (same job id) go to the next one, round the list until the wait ends.
// Requests are sealed with the keyring's active key when one is given, else sent unsealed
// (key_id 0; only services with allow_unsealed take those, the Courier services do).
// Thread-safety: one owner thread (it owns ZeroMQ sockets).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "courier/curve.hpp"
#include "courier/job.hpp"
#include "courier/keyring.hpp"
#include "courier/value.hpp"
#include "frames.hpp"

namespace courier::detail {

struct CallerOptions {
  std::vector<std::string> brokers = {"tcp://127.0.0.1:5555"};
  // Seal requests with its active key and open replies with it. Default none: unsealed.
  std::shared_ptr<const Keyring> keyring;
  // Silence after which the next broker is tried. Default 3 s (PROTOCOL.md §6.4).
  std::chrono::milliseconds failover_timeout{3000};
  // CURVE client settings for the broker sockets. Default off; loaded at construction.
  CurveOptions curve;
};

class ServiceCaller {
 public:
  // Throws: Error(kConfig) for no brokers, a bad endpoint or a bad CURVE key file.
  explicit ServiceCaller(CallerOptions options);
  ~ServiceCaller();
  ServiceCaller(const ServiceCaller&) = delete;
  ServiceCaller& operator=(const ServiceCaller&) = delete;

  // Submits `request` to `service` as a job with a deadline `timeout` from now and waits for
  // its answer. Returns: the reply (nil for an accepted mode-send job).
  // Throws: Error with the job's code (kHandlerError, kNoSuchService, kDeadlineExceeded,
  // kUnavailable when no broker answered at all, kUnauthenticated for a reply that does not
  // open or is unsealed where the request was sealed...).
  Value Call(std::string_view service, const Value& request, std::chrono::milliseconds timeout,
             ReplyMode mode = ReplyMode::kCall);

  struct Answer {
    enum class Kind { kReply, kError, kAccepted };
    Kind kind = Kind::kError;
    std::string envelope;  // kReply: reply envelope bytes
    std::string payload;   // kReply: reply payload bytes (sealed or not)
    ErrorBody error;       // kError
    std::string broker;    // endpoint that answered
  };
  // Submits the exact frames `envelope` and `payload` (whose job id is `job_id`) and waits
  // up to `wait`. Returns: the broker's answer, or std::nullopt if none came in time.
  std::optional<Answer> Submit(const JobId& job_id, std::string_view envelope, std::string_view payload,
                               std::chrono::milliseconds wait);
  // Returns: whether any broker answered (anything, even a PONG) during the last Submit.
  bool heard_from_broker() const { return heard_; }

  const CallerOptions& options() const { return options_; }

 private:
  zmq::socket_t& Socket(std::size_t index);

  CallerOptions options_;
  zmq::context_t context_{1};
  std::vector<std::unique_ptr<zmq::socket_t>> sockets_;
  bool heard_ = false;
};

}  // namespace courier::detail
