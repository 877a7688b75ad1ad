#include "report_channel.hpp"

#include <algorithm>

#include "curve_socket.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "protocol.hpp"

namespace courier::detail {

ReportChannel::ReportChannel(zmq::context_t& context, ChannelOptions options) : options_(std::move(options)) {
  if (options_.brokers.empty()) throw Error(ErrorCode::kConfig, "a reporter needs at least one broker");
  sockets_.reserve(options_.brokers.size());
  for (const std::string& endpoint : options_.brokers) {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::immediate, 1);
    socket.set(zmq::sockopt::sndhwm, 100);
    socket.set(zmq::sockopt::rcvhwm, 1000);
    socket.set(zmq::sockopt::reconnect_ivl, 100);
    socket.set(zmq::sockopt::reconnect_ivl_max, 2000);
    ApplyCurve(socket, options_.curve);
    try {
      socket.connect(endpoint);
    } catch (const zmq::error_t& e) {
      throw Error(ErrorCode::kConfig, "reporter broker " + endpoint + ": " + e.what());
    }
    sockets_.push_back(std::move(socket));
  }
  for (zmq::socket_t& socket : sockets_) items_.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
}

void ReportChannel::Start(std::string_view plaintext, std::chrono::milliseconds deadline, Clock::time_point now) {
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = options_.service;
  envelope.created_at_ms = NowUnixMs();
  envelope.deadline_ms = envelope.created_at_ms + static_cast<std::uint64_t>(std::max<std::int64_t>(1, deadline.count()));
  envelope.max_attempts = kDefaultMaxAttempts;
  envelope.mode = ReplyMode::kSend;
  if (options_.keyring) {
    Keyring::Sealed sealed = options_.keyring->Seal(envelope, plaintext);
    envelope_ = std::move(sealed.envelope);
    payload_ = std::move(sealed.payload);
  } else {
    envelope.key_id = kUnsealedKeyId;
    envelope_ = EncodeEnvelope(envelope);
    payload_.assign(plaintext);
  }
  job_id_ = envelope.job_id;
  deadline_unix_ms_ = envelope.deadline_ms;
  failures_in_round_ = 0;
  pending_outcome_.reset();
  SendCurrent(now);
}

void ReportChannel::SendCurrent(Clock::time_point now) {
  zmq::socket_t& socket = sockets_[broker_];
  static constexpr char kSubmit = static_cast<char>(ClientCommand::kSubmit);
  bool sent = false;
  try {
    sent = socket.send(zmq::buffer(std::string_view()), zmq::send_flags::sndmore | zmq::send_flags::dontwait)
               .has_value();
    // Once the first frame is queued the rest of the message goes through.
    if (sent) {
      socket.send(zmq::buffer(kCourierClient), zmq::send_flags::sndmore);
      socket.send(zmq::buffer(&kSubmit, 1), zmq::send_flags::sndmore);
      socket.send(zmq::buffer(envelope_), zmq::send_flags::sndmore);
      socket.send(zmq::buffer(payload_), zmq::send_flags::none);
    }
  } catch (const zmq::error_t&) {
    sent = false;
  }
  if (!sent) {  // not connected (ZMQ_IMMEDIATE) or at its high-water mark
    state_ = State::kWaiting;
    Failed(now);
    return;
  }
  state_ = State::kWaiting;
  timer_ = now + options_.accept_timeout;
}

void ReportChannel::Failed(Clock::time_point now) {
  if (NowUnixMs() >= deadline_unix_ms_) {
    state_ = State::kIdle;
    pending_outcome_ = Outcome{false, ErrorCode::kDeadlineExceeded, "no broker accepted the report before its deadline"};
    return;
  }
  ++retries_;
  broker_ = (broker_ + 1) % sockets_.size();
  ++failures_in_round_;
  std::chrono::milliseconds delay{0};
  if (failures_in_round_ >= sockets_.size()) {  // every broker failed in turn: back off
    failures_in_round_ = 0;
    backoff_ = backoff_.count() == 0 ? options_.retry_initial : std::min(backoff_ * 2, options_.retry_max);
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    delay = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(backoff_.count()) * jitter(random_)));
  }
  state_ = State::kBackoff;
  timer_ = now + delay;
}

std::optional<ReportChannel::Outcome> ReportChannel::Process(Clock::time_point now) {
  for (zmq::socket_t& socket : sockets_) {
    // Bounded: at most what the socket holds right now (rcvhwm), never blocking.
    for (int n = 0; n < 1000; ++n) {
      std::vector<zmq::message_t> frames;
      zmq::message_t frame;
      try {
        if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
        frames.push_back(std::move(frame));
        while (frames.back().more()) {
          zmq::message_t next;
          (void)socket.recv(next, zmq::recv_flags::none);
          frames.push_back(std::move(next));
        }
      } catch (const zmq::error_t&) {
        break;
      }
      if (state_ != State::kWaiting && state_ != State::kBackoff) continue;
      if (frames.size() < 4 || frames[0].size() != 0 || frames[1].to_string_view() != kCourierClient ||
          frames[2].size() != 1) {
        continue;  // not for us (or malformed): ignore
      }
      const auto command = static_cast<ClientCommand>(frames[2].data<char>()[0]);
      if (command == ClientCommand::kAccept && frames.size() == 4 && frames[3].to_string_view() == job_id_.View()) {
        state_ = State::kIdle;
        backoff_ = std::chrono::milliseconds(0);
        failures_in_round_ = 0;
        return Outcome{true, ErrorCode::kInternal, {}};
      }
      if (command == ClientCommand::kError && frames.size() == 4) {
        ErrorBody body;
        try {
          body = DecodeErrorBody(frames[3].to_string_view());
        } catch (const Error&) {
          continue;
        }
        if (body.job_id != job_id_ && !body.job_id.IsZero()) continue;
        if (body.job_id.IsZero() && state_ != State::kWaiting) continue;
        if (IsRetryable(body.code)) {
          Failed(now);
        } else {
          state_ = State::kIdle;
          return Outcome{false, body.code, body.message};
        }
      }
    }
  }
  if (pending_outcome_) {
    std::optional<Outcome> outcome = std::move(pending_outcome_);
    pending_outcome_.reset();
    return outcome;
  }
  if (state_ == State::kWaiting && now >= timer_) {
    Failed(now);
  }
  if (state_ == State::kBackoff && now >= timer_) {
    SendCurrent(now);
  }
  if (pending_outcome_) {
    std::optional<Outcome> outcome = std::move(pending_outcome_);
    pending_outcome_.reset();
    return outcome;
  }
  return std::nullopt;
}

ReportChannel::Clock::time_point ReportChannel::next_timer() const {
  if (state_ == State::kIdle) return Clock::time_point::max();
  if (pending_outcome_) return Clock::time_point::min();
  return timer_;
}

}  // namespace courier::detail
