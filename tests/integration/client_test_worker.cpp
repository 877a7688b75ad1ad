#include "client_test_worker.hpp"

#include <unistd.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "envelope_codec.hpp"
#include "frames.hpp"
#include "protocol.hpp"

namespace courier::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kHeartbeat = std::chrono::milliseconds(500);

std::string Byte(std::uint8_t value) { return std::string(1, static_cast<char>(value)); }

void SendFrames(zmq::socket_t& socket, const std::vector<std::string>& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    socket.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

std::vector<std::string> Header(detail::WorkerCommand command) {
  return {"", std::string(detail::kCourierWorker), Byte(static_cast<std::uint8_t>(command))};
}

struct Due {
  Clock::time_point at;
  std::size_t socket;
  std::vector<std::string> frames;
};

}  // namespace

Behaviour Echo(std::chrono::milliseconds delay) {
  return [delay](const WorkerJob& job) { return WorkerAction::Reply(job.request, delay); };
}

TestWorker::TestWorker(std::vector<std::string> endpoints, std::string service, std::shared_ptr<const Keyring> keyring,
                       Behaviour behaviour, std::uint32_t capacity)
    : endpoints_(std::move(endpoints)),
      service_(std::move(service)),
      keyring_(std::move(keyring)),
      behaviour_(std::move(behaviour)),
      capacity_(capacity),
      thread_([this] { Run(); }) {}

TestWorker::~TestWorker() { Stop(); }

void TestWorker::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::size_t TestWorker::deliveries() const {
  std::lock_guard lock(mutex_);
  return deliveries_;
}

std::size_t TestWorker::deliveries(const JobId& id) const {
  std::lock_guard lock(mutex_);
  const auto it = seen_.find(id);
  return it == seen_.end() ? 0 : it->second;
}

std::size_t TestWorker::distinct_jobs() const {
  std::lock_guard lock(mutex_);
  return seen_.size();
}

std::size_t TestWorker::max_concurrent() const {
  std::lock_guard lock(mutex_);
  return max_holding_;
}

void TestWorker::Run() {
  zmq::context_t context(1);
  std::vector<zmq::socket_t> sockets;
  std::vector<Clock::time_point> last_sent;
  auto ready = [&](std::size_t i) {
    detail::ReadyInfo info;
    info.capacity = capacity_;
    info.host = "test-host";
    info.pid = static_cast<std::uint64_t>(::getpid());
    info.instance = "test-host/" + service_;
    auto frames = Header(detail::WorkerCommand::kReady);
    frames.push_back(service_);
    frames.push_back(detail::EncodeReadyInfo(info));
    SendFrames(sockets[i], frames);
    last_sent[i] = Clock::now();
  };
  auto dial = [&](std::size_t i) {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndhwm, 100000);
    socket.set(zmq::sockopt::rcvhwm, 100000);
    socket.connect(endpoints_[i]);
    return socket;
  };
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    sockets.push_back(dial(i));
    last_sent.push_back(Clock::now());
    ready(i);
  }

  std::vector<Due> due;
  std::vector<zmq::message_t> message;
  while (!stop_.load()) {
    std::vector<zmq::pollitem_t> items;
    for (auto& socket : sockets) items.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items, std::chrono::milliseconds(5));
    const auto now = Clock::now();

    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      while (true) {
        message.clear();
        if (!zmq::recv_multipart(sockets[i], std::back_inserter(message), zmq::recv_flags::dontwait)) break;
        if (message.size() < 3 || message[2].size() != 1) continue;
        const auto command = static_cast<detail::WorkerCommand>(message[2].data<std::uint8_t>()[0]);
        if (command == detail::WorkerCommand::kDisconnect) {
          // Start over on a fresh socket, as a real worker host does.
          sockets[i] = dial(i);
          ready(i);
          break;
        }
        if (command != detail::WorkerCommand::kRequest || message.size() < 5) continue;
        const std::string envelope_bytes = message[3].to_string();
        const std::string payload = message[4].to_string();
        WorkerJob job;
        Envelope request_envelope;
        try {
          const detail::EnvelopeView view = detail::DecodeEnvelope(envelope_bytes);
          request_envelope = view.ToEnvelope();
          job.id = view.job_id;
          job.service = std::string(view.service);
          job.attempt = view.attempt;
          job.mode = view.mode;
          job.request = DecodeValue(view.key_id == kUnsealedKeyId ? payload : keyring_->Open(envelope_bytes, payload));
        } catch (const Error& error) {
          ++bad_jobs_;
          auto frames = Header(detail::WorkerCommand::kError);
          frames.push_back(detail::EncodeErrorBody(job.id, error.code(), error.what()));
          SendFrames(sockets[i], frames);
          continue;
        }
        job.broker = i;
        {
          std::lock_guard lock(mutex_);
          job.delivery = ++seen_[job.id];
          ++deliveries_;
          ++holding_;
          max_holding_ = std::max(max_holding_, holding_);
        }
        const WorkerAction action = behaviour_(job);
        std::vector<std::string> frames;
        switch (action.kind) {
          case WorkerAction::Kind::kReply:
          case WorkerAction::Kind::kUnsealedReply: {
            Envelope reply = request_envelope;
            reply.mode = ReplyMode::kReply;
            reply.created_at_ms = NowUnixMs();
            frames = Header(detail::WorkerCommand::kReply);
            if (action.kind == WorkerAction::Kind::kReply) {
              Keyring::Sealed sealed = keyring_->Seal(reply, EncodeValue(action.reply));
              frames.push_back(std::move(sealed.envelope));
              frames.push_back(std::move(sealed.payload));
            } else {
              reply.key_id = kUnsealedKeyId;
              frames.push_back(detail::EncodeEnvelope(reply));
              frames.push_back(EncodeValue(action.reply));
            }
            break;
          }
          case WorkerAction::Kind::kError:
            frames = Header(detail::WorkerCommand::kError);
            frames.push_back(detail::EncodeErrorBody(job.id, action.code, action.message));
            break;
          case WorkerAction::Kind::kReject:
            frames = Header(detail::WorkerCommand::kReject);
            frames.push_back(detail::EncodeReject(job.id, action.code));
            break;
          case WorkerAction::Kind::kIgnore:
            // Holds the job (and its credit) forever.
            break;
        }
        if (frames.empty()) continue;
        due.push_back({now + action.delay, i, std::move(frames)});
      }
    }

    for (auto it = due.begin(); it != due.end();) {
      if (it->at > now) {
        ++it;
        continue;
      }
      SendFrames(sockets[it->socket], it->frames);
      last_sent[it->socket] = now;
      {
        std::lock_guard lock(mutex_);
        --holding_;
      }
      it = due.erase(it);
    }
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (now - last_sent[i] >= kHeartbeat) {
        SendFrames(sockets[i], Header(detail::WorkerCommand::kHeartbeat));
        last_sent[i] = now;
      }
    }
  }
  for (auto& socket : sockets) {
    try {
      SendFrames(socket, Header(detail::WorkerCommand::kDisconnect));
    } catch (const zmq::error_t&) {
    }
  }
}

}  // namespace courier::test
