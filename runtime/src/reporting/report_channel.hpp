// report_channel.hpp — submits one report job at a time to courier.errors or
// courier.metrics and sees it accepted: the transport both reporters share.
//
// One DEALER per broker (ZMQ_IMMEDIATE, so a send to a broker that is not connected fails
// at once instead of queueing), CRC01 SUBMIT in mode 1 (send), then wait for ACCEPT (or
// ERROR) naming the job id. A timeout, a broker that is not connected, or a retryable
// ERROR (busy, shutting_down, worker_lost, unavailable) moves to the next broker and
// resends the same bytes (same job id); once every broker failed in turn it backs off
// (retry_initial doubling to retry_max, ±50% jitter). Backoff persists across jobs and
// resets on ACCEPT. A job whose deadline passes, or that draws any other ERROR, ends with
// a failed Outcome.
// Thread-safety: none. Construct, use and destroy on the actor thread that owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "courier/curve.hpp"
#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/keyring.hpp"

namespace courier::detail {

struct ChannelOptions {
  std::vector<std::string> brokers;
  std::string service;                        // courier.errors or courier.metrics
  std::shared_ptr<const Keyring> keyring;     // seal with it; null = unsealed
  CurveOptions curve;                         // CURVE client settings, resolved; default off
  std::chrono::milliseconds accept_timeout{1000};
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
};

class ReportChannel {
 public:
  using Clock = std::chrono::steady_clock;

  struct Outcome {
    bool accepted = false;
    ErrorCode code = ErrorCode::kInternal;  // why not, when !accepted
    std::string message;
  };

  // Connects (asynchronously) to every broker. Throws: Error(kConfig) for a bad endpoint.
  ReportChannel(zmq::context_t& context, ChannelOptions options);

  bool busy() const { return state_ != State::kIdle; }
  // Starts submitting one job whose payload is the MessagePack `plaintext`, with a deadline
  // `deadline` from now. Requires !busy(). Throws: Error if the job cannot be built.
  void Start(std::string_view plaintext, std::chrono::milliseconds deadline, Clock::time_point now);
  // Abandons the job in flight, if any (its late ACCEPT is ignored).
  void Abandon() { state_ = State::kIdle; }

  // Poll items for the broker sockets (ZMQ_POLLIN), valid until the channel is destroyed.
  std::vector<zmq::pollitem_t>& poll_items() { return items_; }
  // Reads whatever the sockets hold and fires due timers. Call after every poll.
  // Returns: the job's outcome once it is decided.
  std::optional<Outcome> Process(Clock::time_point now);
  // Returns: when Process must run even if no socket becomes readable.
  Clock::time_point next_timer() const;

  std::uint64_t retries() const { return retries_; }
  const JobId& job_id() const { return job_id_; }

 private:
  enum class State { kIdle, kWaiting, kBackoff };
  void SendCurrent(Clock::time_point now);
  void Failed(Clock::time_point now);

  ChannelOptions options_;
  std::vector<zmq::socket_t> sockets_;
  std::vector<zmq::pollitem_t> items_;
  std::mt19937_64 random_{std::random_device{}()};

  State state_ = State::kIdle;
  JobId job_id_;
  std::string envelope_;
  std::string payload_;
  std::uint64_t deadline_unix_ms_ = 0;
  Clock::time_point timer_{};
  std::size_t broker_ = 0;
  std::size_t failures_in_round_ = 0;
  std::chrono::milliseconds backoff_{0};
  std::uint64_t retries_ = 0;
  std::optional<Outcome> pending_outcome_;
};

}  // namespace courier::detail
