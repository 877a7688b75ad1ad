#include "worker_support.hpp"

#include <gtest/gtest.h>

#include "envelope_codec.hpp"
#include "frames.hpp"

namespace courier::test {

using detail::ClientCommand;
using detail::WorkerCommand;

namespace {

std::string ToString(const zmq::message_t& message) { return std::string(message.to_string_view()); }

bool ReceiveAll(zmq::socket_t& socket, std::vector<zmq::message_t>& frames, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return false;
  frames.clear();
  do {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) return !frames.empty();
    frames.push_back(std::move(frame));
  } while (frames.back().more());
  return true;
}

}  // namespace

RawClient::RawClient(const std::string& endpoint, const Keyring& keyring)
    : keyring_(keyring), context_(1), socket_(context_, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

JobId RawClient::Submit(const std::string& service, const Value& request, const SubmitOptions& options) {
  Envelope envelope;
  envelope.job_id = options.job_id.value_or(JobId::Random());
  envelope.service = service;
  envelope.created_at_ms = NowUnixMs();
  envelope.deadline_ms = envelope.created_at_ms + static_cast<std::uint64_t>(options.deadline.count());
  envelope.max_attempts = options.max_attempts;
  const std::string plaintext = EncodeValue(request);
  std::string envelope_bytes;
  std::string payload;
  if (options.seal) {
    Keyring::Sealed sealed = (options.keyring != nullptr ? *options.keyring : keyring_).Seal(envelope, plaintext);
    envelope_bytes = std::move(sealed.envelope);
    payload = std::move(sealed.payload);
  } else {
    envelope_bytes = detail::EncodeEnvelope(envelope);
    payload = plaintext;
  }
  if (options.tamper) payload[payload.size() / 2] = static_cast<char>(payload[payload.size() / 2] ^ 0x01);
  const auto command = static_cast<std::uint8_t>(ClientCommand::kSubmit);
  socket_.send(zmq::message_t(), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(detail::kCourierClient), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(&command, 1), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(envelope_bytes), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(payload), zmq::send_flags::none);
  return envelope.job_id;
}

std::optional<Answer> RawClient::Receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<zmq::message_t> frames;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !ReceiveAll(socket_, frames, left)) return std::nullopt;
    if (frames.size() < 4 || frames[1].to_string_view() != detail::kCourierClient || frames[2].size() != 1) continue;
    const auto command = static_cast<ClientCommand>(*static_cast<const std::uint8_t*>(frames[2].data()));
    Answer answer;
    if (command == ClientCommand::kReply && frames.size() >= 5) {
      const std::string envelope_bytes = ToString(frames[3]);
      const detail::EnvelopeView envelope = detail::DecodeEnvelope(envelope_bytes);
      answer.job_id = envelope.job_id;
      answer.ok = true;
      answer.attempt = envelope.attempt;
      answer.key_id = envelope.key_id;
      const std::string plaintext = envelope.key_id == kUnsealedKeyId
                                        ? ToString(frames[4])
                                        : keyring_.Open(envelope_bytes, frames[4].to_string_view());
      answer.reply = DecodeValue(plaintext);
      return answer;
    }
    if (command == ClientCommand::kError) {
      const detail::ErrorBody body = detail::DecodeErrorBody(frames[3].to_string_view());
      answer.job_id = body.job_id;
      answer.code = body.code;
      answer.message = body.message;
      return answer;
    }
  }
}

Answer RawClient::Call(const std::string& service, const Value& request, const SubmitOptions& options,
                       std::chrono::milliseconds timeout) {
  const JobId id = Submit(service, request, options);
  return Collect({id}, timeout).front();
}

std::vector<Answer> RawClient::Collect(const std::vector<JobId>& ids, std::chrono::milliseconds timeout) {
  std::vector<std::optional<Answer>> answers(ids.size());
  std::size_t missing = ids.size();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (missing > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    std::optional<Answer> answer = left.count() > 0 ? Receive(left) : std::nullopt;
    if (!answer) break;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] == answer->job_id && !answers[i]) {
        answers[i] = std::move(answer);
        --missing;
        break;
      }
    }
  }
  std::vector<Answer> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!answers[i]) {
      ADD_FAILURE() << "no answer for job " << ids[i].Hex() << " within " << timeout.count() << " ms";
      Answer timeout_answer;
      timeout_answer.job_id = ids[i];
      timeout_answer.message = "timeout";
      out.push_back(timeout_answer);
    } else {
      out.push_back(std::move(*answers[i]));
    }
  }
  return out;
}

FakeBroker::FakeBroker(const std::string& endpoint)
    : context_(1), socket_(std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router)) {
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::router_mandatory, 1);
  socket_->bind(endpoint);
}

std::optional<FakeBroker::Message> FakeBroker::Receive(std::chrono::milliseconds timeout, bool skip_heartbeats) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<zmq::message_t> frames;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !ReceiveAll(*socket_, frames, left)) return std::nullopt;
    EXPECT_GE(frames.size(), 4u);
    if (frames.size() < 4) continue;
    EXPECT_EQ(frames[1].size(), 0u) << "frame 0 after the identity must be empty";
    EXPECT_EQ(frames[2].to_string_view(), detail::kCourierWorker);
    EXPECT_EQ(frames[3].size(), 1u);
    Message message;
    message.identity = ToString(frames[0]);
    message.command = static_cast<WorkerCommand>(*static_cast<const std::uint8_t*>(frames[3].data()));
    for (std::size_t i = 4; i < frames.size(); ++i) message.bodies.push_back(ToString(frames[i]));
    if (skip_heartbeats && message.command == WorkerCommand::kHeartbeat) continue;
    return message;
  }
}

std::optional<FakeBroker::Message> FakeBroker::Expect(WorkerCommand command, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    std::optional<Message> message = Receive(left, command != WorkerCommand::kHeartbeat);
    if (!message) return std::nullopt;
    if (message->command == command) return message;
  }
}

void FakeBroker::Send(const std::string& identity, WorkerCommand command, const std::vector<std::string>& bodies) {
  const auto byte = static_cast<std::uint8_t>(command);
  try {
    socket_->send(zmq::buffer(identity), zmq::send_flags::sndmore);
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return;  // the worker is gone (ROUTER_MANDATORY): nothing to send to
    throw;
  }
  socket_->send(zmq::message_t(), zmq::send_flags::sndmore);
  socket_->send(zmq::buffer(detail::kCourierWorker), zmq::send_flags::sndmore);
  socket_->send(zmq::buffer(&byte, 1), bodies.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    socket_->send(zmq::buffer(bodies[i]), i + 1 == bodies.size() ? zmq::send_flags::none : zmq::send_flags::sndmore);
  }
}

void FakeBroker::Close() { socket_.reset(); }

std::filesystem::path WriteKeyring(const TempDir& dir, Keyring& keyring, const std::string& name) {
  const std::filesystem::path path = dir.path() / name;
  GenerateKeyFile(path);
  keyring = Keyring::Load(path);
  return path;
}

std::unique_ptr<ChildProcess> StartBroker(const TempDir& dir, const std::string& endpoint, const std::string& name) {
  const std::filesystem::path config = dir.Write(
      name + ".toml", "bind = [\"" + endpoint + "\"]\nheartbeat_interval = \"" +
                          std::to_string(kTestHeartbeat.count()) + "ms\"\nheartbeat_liveness = " +
                          std::to_string(kTestLiveness) + "\n[log]\nlevel = \"debug\"\n");
  auto broker = std::make_unique<ChildProcess>(BinaryPath("courier-broker"),
                                               std::vector<std::string>{"--config", config.string()},
                                               dir.path() / (name + ".log"));
  EXPECT_TRUE(broker->WaitForLog("listening on", 10s)) << broker->Log();
  return broker;
}

std::unique_ptr<ChildProcess> StartWorker(const TempDir& dir, const std::string& config, const std::string& name,
                                          std::vector<std::string> extra_args) {
  const std::filesystem::path file = dir.Write(name + ".toml", config);
  std::vector<std::string> args{"--config", file.string()};
  for (auto& arg : extra_args) args.push_back(std::move(arg));
  auto worker = std::make_unique<ChildProcess>(BinaryPath("courier-worker"), std::move(args),
                                               dir.path() / (name + ".log"),
                                               std::vector<std::string>{"XDG_CONFIG_HOME=" + dir.path().string()});
  EXPECT_TRUE(worker->WaitForLog("serving [", 10s)) << worker->Log();
  return worker;
}

std::string WorkerConfig(const std::vector<std::string>& brokers, const std::filesystem::path& keyring,
                         const std::string& services, int threads, const std::string& extra) {
  std::string list;
  for (const auto& broker : brokers) list += (list.empty() ? "\"" : ", \"") + broker + "\"";
  return "brokers = [" + list + "]\nkeyring = \"" + keyring.string() + "\"\nthreads = " + std::to_string(threads) +
         "\nheartbeat_interval = \"" + std::to_string(kTestHeartbeat.count()) + "ms\"\nheartbeat_liveness = " +
         std::to_string(kTestLiveness) + "\nreconnect_initial = \"50ms\"\nreconnect_max = \"500ms\"\n" +
         "plugin_dir = \"" COURIER_PLUGIN_DIR "\"\nschema_dirs = [\"" COURIER_SOURCE_DIR "/schemas/services\"]\n" + extra +
         "\n[log]\nlevel = \"debug\"\n" + services;
}

std::size_t CountInLog(const ChildProcess& process, const std::string& text) {
  const std::string log = process.Log();
  std::size_t count = 0;
  for (std::size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + text.size())) ++count;
  return count;
}

}  // namespace courier::test
