// courier::Client's stored-job calls (Enqueue, Job, Result, ResultAsync, Jobs) end to end
// over real sockets, against an in-process fake broker that follows PROTOCOL.md §6.5 and
// §9.1 just far enough: it stores mode-3 jobs, ACCEPTs them, "runs" them itself as a worker
// would (sealing the reply with the same keyring), and answers `job` and `jobs` queries,
// holding a waiting `job` question for its wait_ms.
//
// Services: "echo" is done at once with {"echo": request}; "fail" fails handler_error;
// "slow" stays queued; "forge" is done with an unsealed reply (which the client must refuse).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "courier/client.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "protocol.hpp"
#include "wire/job_records.hpp"

namespace courier {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class FakeStoreBroker {
 public:
  explicit FakeStoreBroker(std::shared_ptr<const Keyring> keyring) : keyring_(std::move(keyring)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::router_mandatory, 1);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeStoreBroker() {
    stop_ = true;
    thread_.join();
  }

  const std::string& endpoint() const { return endpoint_; }
  std::size_t stored() {
    std::lock_guard lock(mutex_);
    return jobs_.size();
  }

 private:
  struct Held {
    std::string identity;
    std::string correlation;
    JobId id;
    Clock::time_point due;
  };

  void Send(const std::string& identity, std::initializer_list<std::string_view> frames) {
    std::vector<zmq::const_buffer> parts;
    parts.emplace_back(identity.data(), identity.size());
    for (auto frame : frames) parts.emplace_back(frame.data(), frame.size());
    zmq::send_multipart(socket_, parts);
  }
  static std::string Cmd(detail::ClientCommand command) { return std::string(1, static_cast<char>(command)); }

  void Run() {
    while (!stop_) {
      std::vector<zmq::message_t> message;
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(10));
      while (zmq::recv_multipart(socket_, std::back_inserter(message), zmq::recv_flags::dontwait)) {
        std::vector<std::string> frames;
        for (auto& part : message) frames.emplace_back(part.to_string());
        message.clear();
        Handle(frames);
      }
      const auto now = Clock::now();
      for (auto it = held_.begin(); it != held_.end();) {
        if (it->due > now && !Finished(it->id)) {
          ++it;
          continue;
        }
        Send(it->identity, {"", detail::kCourierClient, Cmd(detail::ClientCommand::kQueryReply), it->correlation,
                            RecordReply(it->id)});
        it = held_.erase(it);
      }
    }
  }

  bool Finished(const JobId& id) {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(id);
    return it != jobs_.end() && it->second.state != wire::JobState::kQueued;
  }

  std::string RecordReply(const JobId& id) {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(id);
    if (it == jobs_.end()) return std::string("\x92\x12\xa4nope", 7);  // [not_found, "nope"]
    return wire::EncodeQueryReply(wire::EncodeJobRecord(it->second));
  }

  void Handle(const std::vector<std::string>& frames) {
    if (frames.size() < 4 || frames[2] != detail::kCourierClient) return;
    const std::string& identity = frames[0];
    const auto command = static_cast<detail::ClientCommand>(frames[3].at(0));
    if (command == detail::ClientCommand::kPing) {
      Send(identity, {"", detail::kCourierClient, Cmd(detail::ClientCommand::kPong), frames.at(4), "INCARN01"});
    } else if (command == detail::ClientCommand::kSubmit) {
      Store(frames.at(4), frames.at(5));
      const JobId id = detail::DecodeEnvelope(frames.at(4)).job_id;
      Send(identity, {"", detail::kCourierClient, Cmd(detail::ClientCommand::kAccept), id.View()});
    } else if (command == detail::ClientCommand::kQuery) {
      const std::string& correlation = frames.at(4);
      const std::string name = detail::DecodeQueryName(frames.at(5));
      if (name == wire::kJobQueryName) {
        const wire::JobQuery query = wire::DecodeJobQuery(frames.at(5));
        if (query.wait_ms > 0 && !Finished(query.id) && stored_has(query.id)) {
          held_.push_back({identity, correlation, query.id, Clock::now() + std::chrono::milliseconds(query.wait_ms)});
          return;
        }
        Send(identity, {"", detail::kCourierClient, Cmd(detail::ClientCommand::kQueryReply), correlation,
                        RecordReply(query.id)});
      } else if (name == wire::kJobsQueryName) {
        const wire::JobsQuery query = wire::DecodeJobsQuery(frames.at(5));
        wire::JobsPage page;
        std::lock_guard lock(mutex_);
        std::size_t i = query.after;
        for (; i < order_.size() && page.rows.size() < query.limit; ++i) {
          wire::JobRecord row = jobs_.at(order_[i]);
          row.reply.clear();  // only `job` answers carry the reply
          page.rows.push_back(std::move(row));
        }
        page.next = i < order_.size() ? i : 0;
        Send(identity, {"", detail::kCourierClient, Cmd(detail::ClientCommand::kQueryReply), correlation,
                        wire::EncodeQueryReply(wire::EncodeJobsPage(page))});
      }
    }
  }

  bool stored_has(const JobId& id) {
    std::lock_guard lock(mutex_);
    return jobs_.count(id) != 0;
  }

  // Stores a submitted job and, for the services that finish at once, runs it.
  void Store(const std::string& envelope_bytes, const std::string& payload) {
    const detail::EnvelopeView envelope = detail::DecodeEnvelope(envelope_bytes);
    wire::JobRecord record;
    record.id = envelope.job_id;
    record.service = std::string(envelope.service);
    record.attempt = 1;
    record.max_attempts = envelope.max_attempts;
    record.since_ms = NowUnixMs();
    Envelope reply;
    reply.job_id = envelope.job_id;
    reply.service = record.service;
    reply.created_at_ms = NowUnixMs();
    reply.deadline_ms = envelope.deadline_ms;
    reply.mode = ReplyMode::kReply;
    if (record.service == "echo") {
      const Value request = DecodeValue(keyring_->Open(envelope_bytes, payload));
      const auto sealed = keyring_->Seal(reply, EncodeValue(Value::Object({{"echo", request}})));
      record.state = wire::JobState::kDone;
      record.reply = {sealed.envelope, sealed.payload};
      record.expires_ms = record.since_ms + 3600000;
    } else if (record.service == "fail") {
      record.state = wire::JobState::kFailed;
      record.code = ErrorCode::kHandlerError;
      record.message = "no can do";
    } else if (record.service == "forge") {
      record.state = wire::JobState::kDone;
      record.reply = {detail::EncodeEnvelope(reply), EncodeValue(Value("forged"))};
    } else {
      record.state = wire::JobState::kQueued;
    }
    std::lock_guard lock(mutex_);
    if (jobs_.emplace(record.id, record).second) order_.push_back(record.id);
  }

  std::shared_ptr<const Keyring> keyring_;
  zmq::context_t context_{1};
  zmq::socket_t socket_{context_, zmq::socket_type::router};
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::map<JobId, wire::JobRecord> jobs_;
  std::vector<JobId> order_;
  std::vector<Held> held_;  // the broker thread's only
  std::thread thread_;
};

struct TypedRequest {
  std::uint32_t n = 0;
  MSGPACK_DEFINE_MAP(n);
};

class ClientJobsTest : public ::testing::Test {
 protected:
  ClientOptions Options(std::vector<std::string> brokers) {
    ClientOptions options;
    options.brokers = std::move(brokers);
    options.keyring = keyring_;
    options.report = false;
    options.failover_timeout = 1500ms;
    options.heartbeat_interval = 300ms;
    return options;
  }
  std::shared_ptr<const Keyring> keyring_ = std::make_shared<const Keyring>(Keyring::Generate());
};

TEST_F(ClientJobsTest, EnqueuedJobsResultIsFetchedFromTheBrokerThatStoredIt) {
  FakeStoreBroker a(keyring_), b(keyring_);
  Client client(Options({a.endpoint(), b.endpoint()}));
  const JobId id = client.Enqueue("echo", Value::Object({{"n", 1}}));
  EXPECT_EQ(a.stored() + b.stored(), 1u);
  const std::string holder = a.stored() == 1 ? a.endpoint() : b.endpoint();

  const Value result = client.Result(id, 1s);
  EXPECT_EQ(result.At("echo").At("n").AsUint(), 1u);
  const JobStatus status = client.Job(id);
  EXPECT_EQ(status.id, id);
  EXPECT_EQ(status.state, JobState::kDone);
  EXPECT_EQ(status.service, "echo");
  EXPECT_EQ(status.broker, holder);
  ASSERT_TRUE(status.result);
  EXPECT_EQ(status.result->At("echo").At("n").AsUint(), 1u);

  // Typed form, and the asynchronous result on the callback thread.
  const JobId typed = client.Enqueue("echo", TypedRequest{7});
  std::promise<Result> promise;
  client.ResultAsync(typed, 1s, [&](Result r) { promise.set_value(std::move(r)); });
  Result r = promise.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error()->what();
  EXPECT_EQ(r.job_id(), typed);
  EXPECT_EQ(r.value().At("echo").At("n").AsUint(), 7u);
}

TEST_F(ClientJobsTest, FailuresUnknownJobsAndForgedRepliesAreErrors) {
  FakeStoreBroker a(keyring_), b(keyring_);
  Client client(Options({a.endpoint(), b.endpoint()}));
  auto code_of = [&](auto&& call) {
    try {
      call();
    } catch (const Error& error) {
      return error.code();
    }
    return ErrorCode::kInternal;
  };
  const JobId failed = client.Enqueue("fail", Value(1));
  EXPECT_EQ(code_of([&] { client.Result(failed, 1s); }), ErrorCode::kHandlerError);
  const JobStatus status = client.Job(failed);
  EXPECT_EQ(status.state, JobState::kFailed);
  ASSERT_TRUE(status.error);
  EXPECT_STREQ(status.error->what(), "no can do");

  EXPECT_EQ(code_of([&] { client.Job(JobId::Random()); }), ErrorCode::kNotFound);

  const JobId forged = client.Enqueue("forge", Value(1));
  EXPECT_EQ(code_of([&] { client.Job(forged); }), ErrorCode::kUnauthenticated);

  std::promise<Result> promise;
  client.ResultAsync(JobId::Random(), 0ms, [&](Result r) { promise.set_value(std::move(r)); });
  Result r = promise.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error()->code(), ErrorCode::kNotFound);
}

TEST_F(ClientJobsTest, AWaitingLookupIsHeldByTheBrokerForItsWait) {
  FakeStoreBroker a(keyring_);
  Client client(Options({a.endpoint()}));
  const JobId id = client.Enqueue("slow", Value(1));
  // Longer than failover_timeout (1.5 s): the question must not time out before the wait.
  const auto started = Clock::now();
  try {
    client.Result(id, 2000ms);
    ADD_FAILURE() << "a queued job had a result";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kDeadlineExceeded) << error.what();
    EXPECT_EQ(std::string(error.what()), "job " + id.Hex() + " still queued after 2 s");
  }
  EXPECT_GE(Clock::now() - started, 1900ms);
  EXPECT_EQ(client.Job(id).state, JobState::kQueued);
}

TEST_F(ClientJobsTest, JobsListsEveryBrokersStoredJobs) {
  FakeStoreBroker a(keyring_), b(keyring_);
  Client client(Options({a.endpoint(), b.endpoint()}));
  for (const BrokerPing& ping : client.Ping()) ASSERT_TRUE(ping.round_trip);  // both up: jobs go round robin
  std::vector<JobId> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(client.Enqueue(i % 2 == 0 ? "echo" : "slow", Value(i)));
  ASSERT_GT(a.stored(), 0u);
  ASSERT_GT(b.stored(), 0u);

  const std::vector<JobStatus> all = client.Jobs();
  ASSERT_EQ(all.size(), 6u);
  std::set<std::string> brokers;
  for (const JobStatus& row : all) {
    brokers.insert(row.broker);
    EXPECT_FALSE(row.result);  // listings carry no reply
  }
  EXPECT_EQ(brokers.size(), 2u);

  JobsFilter filter;
  filter.limit = 4;
  EXPECT_EQ(client.Jobs(filter).size(), 4u);
  filter.limit = 100;
  filter.service = "slow";
  const auto slow = client.Jobs(filter);
  EXPECT_EQ(slow.size(), 3u);
  for (const JobStatus& row : slow) EXPECT_EQ(row.state, JobState::kQueued);
}

}  // namespace
}  // namespace courier
