#include "service_caller.hpp"

#include <algorithm>

#include "curve_socket.hpp"
#include "envelope_codec.hpp"
#include "protocol.hpp"

namespace courier::detail {

using Clock = std::chrono::steady_clock;

namespace {

void SendFrames(zmq::socket_t& socket, const std::vector<std::string_view>& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    socket.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

std::string CommandByte(ClientCommand command) { return std::string(1, static_cast<char>(command)); }

}  // namespace

ServiceCaller::ServiceCaller(CallerOptions options) : options_(std::move(options)) {
  if (options_.brokers.empty()) throw Error(ErrorCode::kConfig, "no broker to talk to");
  options_.curve = options_.curve.Resolved();
  sockets_.resize(options_.brokers.size());
}

ServiceCaller::~ServiceCaller() {
  for (auto& socket : sockets_) {
    if (socket) socket->close();
  }
}

zmq::socket_t& ServiceCaller::Socket(std::size_t index) {
  if (!sockets_[index]) {
    auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::rcvhwm, 1000);
    socket->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kDefaultMaxMessageBytes + 4096));
    ApplyCurve(*socket, options_.curve);
    try {
      socket->connect(options_.brokers[index]);
    } catch (const zmq::error_t& e) {
      throw Error(ErrorCode::kConfig, "broker " + options_.brokers[index] + ": " + e.what());
    }
    sockets_[index] = std::move(socket);
  }
  return *sockets_[index];
}

std::optional<ServiceCaller::Answer> ServiceCaller::Submit(const JobId& job_id, std::string_view envelope,
                                                           std::string_view payload,
                                                           std::chrono::milliseconds wait) {
  heard_ = false;
  const auto deadline = Clock::now() + wait;
  const std::string submit = CommandByte(ClientCommand::kSubmit);
  const std::string ping = CommandByte(ClientCommand::kPing);
  std::size_t current = 0;
  // Bounded: each pass either returns or moves on after failover_timeout; the wait ends it.
  while (Clock::now() < deadline) {
    zmq::socket_t& socket = Socket(current);
    SendFrames(socket, {"", kCourierClient, ping, "p"});
    SendFrames(socket, {"", kCourierClient, submit, envelope, payload});
    Clock::time_point silent_until = std::min(deadline, Clock::now() + options_.failover_timeout);
    Clock::time_point next_ping = Clock::now() + std::chrono::milliseconds(1000);
    while (true) {
      const auto now = Clock::now();
      if (now >= silent_until) break;  // this broker said nothing: try the next one
      if (now >= next_ping) {
        SendFrames(socket, {"", kCourierClient, ping, "p"});
        next_ping = now + std::chrono::milliseconds(1000);
      }
      const auto until = std::min(silent_until, next_ping);
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::duration_cast<std::chrono::milliseconds>(until - now) +
                              std::chrono::milliseconds(1));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::vector<std::string> frames;
      zmq::message_t frame;
      do {
        if (!socket.recv(frame, zmq::recv_flags::none)) break;
        frames.push_back(frame.to_string());
      } while (frame.more());
      heard_ = true;
      // The broker is alive: keep waiting on it until the deadline.
      silent_until = std::max(silent_until, std::min(deadline, Clock::now() + options_.failover_timeout));
      if (frames.size() < 3 || !frames[0].empty() || frames[1] != kCourierClient || frames[2].size() != 1) continue;
      const auto command = static_cast<ClientCommand>(frames[2][0]);
      Answer answer;
      answer.broker = options_.brokers[current];
      if (command == ClientCommand::kAccept && frames.size() == 4 && frames[3] == job_id.View()) {
        answer.kind = Answer::Kind::kAccepted;
        return answer;
      }
      if (command == ClientCommand::kError && frames.size() == 4) {
        try {
          answer.error = DecodeErrorBody(frames[3]);
        } catch (const Error&) {
          continue;
        }
        if (answer.error.job_id != job_id && !answer.error.job_id.IsZero()) continue;
        answer.kind = Answer::Kind::kError;
        return answer;
      }
      if (command == ClientCommand::kReply && frames.size() == 5) {
        try {
          if (DecodeEnvelope(frames[3]).job_id != job_id) continue;
        } catch (const Error&) {
          continue;
        }
        answer.kind = Answer::Kind::kReply;
        answer.envelope = std::move(frames[3]);
        answer.payload = std::move(frames[4]);
        return answer;
      }
    }
    current = (current + 1) % sockets_.size();
  }
  return std::nullopt;
}

Value ServiceCaller::Call(std::string_view service, const Value& request, std::chrono::milliseconds timeout,
                          ReplyMode mode) {
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = std::string(service);
  envelope.created_at_ms = NowUnixMs();
  envelope.deadline_ms = envelope.created_at_ms + static_cast<std::uint64_t>(std::max<std::int64_t>(1, timeout.count()));
  envelope.max_attempts = kDefaultMaxAttempts;
  envelope.mode = mode;
  std::string envelope_bytes;
  std::string payload;
  const std::string plaintext = EncodeValue(request);
  if (options_.keyring) {
    Keyring::Sealed sealed = options_.keyring->Seal(envelope, plaintext);
    envelope_bytes = std::move(sealed.envelope);
    payload = std::move(sealed.payload);
  } else {
    envelope_bytes = EncodeEnvelope(envelope);
    payload = plaintext;
  }
  const std::optional<Answer> answer = Submit(envelope.job_id, envelope_bytes, payload, timeout);
  if (!answer) {
    if (heard_) throw Error(ErrorCode::kDeadlineExceeded, "no answer from " + std::string(service) + " in time");
    throw Error(ErrorCode::kUnavailable, "no broker answered");
  }
  switch (answer->kind) {
    case Answer::Kind::kAccepted:
      return Value();
    case Answer::Kind::kError:
      throw Error(answer->error.code, answer->error.message);
    case Answer::Kind::kReply:
      break;
  }
  const EnvelopeView reply = DecodeEnvelope(answer->envelope);
  if (reply.mode != ReplyMode::kReply || reply.service != service) {
    throw Error(ErrorCode::kBadRequest, "the answer is not a reply to this job");
  }
  std::string opened;
  if (reply.key_id != kUnsealedKeyId) {
    if (!options_.keyring) {
      throw Error(ErrorCode::kUnknownKey, "the reply is sealed with key " + std::to_string(reply.key_id) +
                                              " and no keyring is loaded");
    }
    opened = options_.keyring->Open(answer->envelope, answer->payload);
  } else if (options_.keyring) {
    throw Error(ErrorCode::kUnauthenticated, "unsealed reply to a sealed request");
  } else {
    opened = answer->payload;
  }
  return DecodeValue(opened);
}

}  // namespace courier::detail
