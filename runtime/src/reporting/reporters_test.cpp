// ErrorReportSender and MetricsReporter against a fake broker: a ROUTER socket in the test.
#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "courier/reporting.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "report_codec.hpp"
#include "stage_recorder.hpp"

namespace courier {
namespace {

using namespace std::chrono_literals;
using Frames = std::vector<std::string>;

class FakeBroker {
 public:
  explicit FakeBroker(zmq::context_t& context, const std::string& endpoint = "tcp://127.0.0.1:*")
      : socket_(context, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(endpoint);
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // Returns: the next SUBMIT as [identity, "", "CRC01", 01, envelope, payload], skipping PINGs.
  std::optional<Frames> ReceiveSubmit(std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 50ms);
      if (!(item.revents & ZMQ_POLLIN)) continue;
      Frames frames;
      zmq::message_t frame;
      do {
        (void)socket_.recv(frame, zmq::recv_flags::none);
        frames.push_back(frame.to_string());
      } while (frame.more());
      if (frames.size() == 6 && frames[2] == "CRC01" && frames[3] == "\x01") return frames;
    }
    return std::nullopt;
  }
  void Accept(const Frames& submit) {
    const auto envelope = detail::DecodeEnvelope(submit[4]);
    Send({submit[0], "", "CRC01", "\x02", std::string(envelope.job_id.View())});
  }
  void Refuse(const Frames& submit, ErrorCode code) {
    const auto envelope = detail::DecodeEnvelope(submit[4]);
    Send({submit[0], "", "CRC01", "\x04", detail::EncodeErrorBody(envelope.job_id, code, "refused by the test")});
  }

 private:
  void Send(const Frames& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      socket_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  zmq::socket_t socket_;
  std::string endpoint_;
};

std::string ReservedEndpoint(zmq::context_t& context) {
  FakeBroker probe(context);
  return probe.endpoint();  // closed again when probe goes: nobody listens there now
}

ReporterOptions FastOptions(const std::string& endpoint) {
  ReporterOptions options;
  options.brokers = {endpoint};
  options.flush_interval = 20ms;
  options.metrics_interval = 50ms;
  options.accept_timeout = 200ms;
  options.retry_initial = 20ms;
  options.retry_max = 100ms;
  options.stop_timeout = 200ms;
  return options;
}

ErrorReport Failure(int n) {
  ErrorReport report;
  report.service = "resize";
  report.stage = "handle";
  report.code = ErrorCode::kHandlerError;
  report.message = "failure " + std::to_string(n);
  return report;
}

detail::ErrorBatch BatchOf(const Frames& submit) {
  const auto envelope = detail::DecodeEnvelope(submit[4]);
  EXPECT_EQ(envelope.service, "courier.errors");
  EXPECT_EQ(envelope.mode, ReplyMode::kSend);
  EXPECT_EQ(envelope.key_id, 0u);
  return detail::DecodeErrorBatch(DecodeValue(submit[5]));
}

TEST(ErrorReportSenderTest, SendsOneBatchAndCountsItSent) {
  zmq::context_t context(1);
  FakeBroker broker(context);
  ErrorReportSender sender(FastOptions(broker.endpoint()));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(sender.Report(Failure(i)));
  std::size_t received = 0;
  while (received < 5) {
    auto submit = broker.ReceiveSubmit();
    ASSERT_TRUE(submit);
    const detail::ErrorBatch batch = BatchOf(*submit);
    for (const ErrorReport& report : batch.reports) {
      EXPECT_EQ(report.message, "failure " + std::to_string(received++));
      EXPECT_EQ(report.reporter, "worker");
      EXPECT_FALSE(report.host.empty());
      EXPECT_NE(report.pid, 0u);
      EXPECT_NE(report.time_ms, 0u);
    }
    EXPECT_EQ(batch.dropped, 0u);
    broker.Accept(*submit);
  }
  ASSERT_TRUE(sender.Flush(5s));
  EXPECT_EQ(sender.counters().sent, 5u);
  EXPECT_EQ(sender.counters().dropped, 0u);
}

TEST(ErrorReportSenderTest, EachAcceptedReportIsTimedFromReportToAccept) {
  zmq::context_t context(1);
  FakeBroker broker(context);
  ReporterOptions options = FastOptions(broker.endpoint());
  std::mutex mutex;
  std::vector<std::pair<std::string, std::chrono::nanoseconds>> delivered;
  options.delivered = [&](std::string_view service, std::chrono::nanoseconds waited) {
    std::lock_guard lock(mutex);
    delivered.emplace_back(std::string(service), waited);
  };
  ErrorReportSender sender(options);
  const auto reported = std::chrono::steady_clock::now();
  sender.Report(Failure(1));
  ErrorReport other = Failure(2);
  other.service = "thumbs";
  sender.Report(other);
  // A refused batch is not delivered: no timing for it.
  std::size_t refused = 0;
  while (refused < 2) {
    auto submit = broker.ReceiveSubmit();
    ASSERT_TRUE(submit);
    refused += BatchOf(*submit).reports.size();
    broker.Refuse(*submit, ErrorCode::kBadRequest);
  }
  ASSERT_TRUE(sender.Flush(5s));
  {
    std::lock_guard lock(mutex);
    EXPECT_TRUE(delivered.empty());
  }
  sender.Report(Failure(3));
  std::size_t accepted = 0;
  while (accepted < 1) {
    auto submit = broker.ReceiveSubmit();
    ASSERT_TRUE(submit);
    std::this_thread::sleep_for(20ms);  // a slow broker (a delay to measure, not a wait): the timing includes it
    accepted += BatchOf(*submit).reports.size();
    broker.Accept(*submit);
  }
  ASSERT_TRUE(sender.Flush(5s));
  const auto bound = std::chrono::steady_clock::now() - reported;
  std::lock_guard lock(mutex);
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].first, "resize");
  EXPECT_GE(delivered[0].second, 20ms);
  EXPECT_LE(delivered[0].second, bound);
}

TEST(ErrorReportSenderTest, OverflowWhileNoBrokerIsCountedAndAnnouncedWhenOneAppears) {
  zmq::context_t context(1);
  const std::string endpoint = ReservedEndpoint(context);
  ReporterOptions options = FastOptions(endpoint);
  options.buffer_limit = 3;
  ErrorReportSender sender(options);
  int accepted = 0;
  for (int i = 0; i < 8; ++i) accepted += sender.Report(Failure(i)) ? 1 : 0;
  // Never blocks; holds at most buffer_limit waiting plus the one batch in flight.
  EXPECT_LE(accepted, 6);  // buffer_limit waiting + at most one batch taken in flight
  EXPECT_EQ(sender.counters().dropped, static_cast<std::uint64_t>(8 - accepted));

  // Wait until it has tried (and failed) at least once, then let a broker appear there.
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (sender.counters().retries == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  ASSERT_GE(sender.counters().retries, 1u);
  FakeBroker broker(context, endpoint);
  std::uint64_t reports = 0;
  std::uint64_t dropped = 0;
  while (reports < static_cast<std::uint64_t>(accepted)) {
    auto submit = broker.ReceiveSubmit();
    ASSERT_TRUE(submit) << "no batch after the broker appeared";
    const detail::ErrorBatch batch = BatchOf(*submit);
    reports += batch.reports.size();
    dropped += batch.dropped;
    broker.Accept(*submit);
  }
  ASSERT_TRUE(sender.Flush(5s));
  EXPECT_EQ(reports, static_cast<std::uint64_t>(accepted));
  EXPECT_EQ(dropped, static_cast<std::uint64_t>(8 - accepted));
}

TEST(ErrorReportSenderTest, SilenceIsRetriedWithTheSameJobId) {
  zmq::context_t context(1);
  FakeBroker broker(context);
  ErrorReportSender sender(FastOptions(broker.endpoint()));
  sender.Report(Failure(1));
  auto first = broker.ReceiveSubmit();
  ASSERT_TRUE(first);
  auto second = broker.ReceiveSubmit();  // no ACCEPT: resent after accept_timeout
  ASSERT_TRUE(second);
  EXPECT_EQ((*first)[4], (*second)[4]);
  EXPECT_EQ((*first)[5], (*second)[5]);
  broker.Accept(*second);
  ASSERT_TRUE(sender.Flush(5s));
  EXPECT_EQ(sender.counters().sent, 1u);
}

TEST(ErrorReportSenderTest, ARefusedBatchIsCountedAsDroppedAndAnnounced) {
  zmq::context_t context(1);
  FakeBroker broker(context);
  ErrorReportSender sender(FastOptions(broker.endpoint()));
  sender.Report(Failure(1));
  sender.Report(Failure(2));
  std::uint64_t refused = 0;
  while (refused < 2) {
    auto submit = broker.ReceiveSubmit();
    ASSERT_TRUE(submit);
    refused += BatchOf(*submit).reports.size();
    broker.Refuse(*submit, ErrorCode::kBadRequest);
  }
  ASSERT_TRUE(sender.Flush(5s));
  EXPECT_EQ(sender.counters().dropped, 2u);
  sender.Report(Failure(3));
  // The loss is announced by the next batch (which may go out before report 3 does).
  std::uint64_t announced = 0;
  bool seen_three = false;
  while (!seen_three) {
    auto next = broker.ReceiveSubmit();
    ASSERT_TRUE(next);
    const detail::ErrorBatch batch = BatchOf(*next);
    announced += batch.dropped;
    for (const ErrorReport& report : batch.reports) seen_three |= report.message == "failure 3";
    broker.Accept(*next);
  }
  EXPECT_EQ(announced, 2u);
  ASSERT_TRUE(sender.Flush(5s));
}

TEST(ErrorReportSenderTest, ReportIsCheapAndNeverBlocksWithoutABroker) {
  zmq::context_t context(1);
  ReporterOptions options = FastOptions(ReservedEndpoint(context));
  options.stop_timeout = 0ms;
  ErrorReportSender sender(options);
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 20000; ++i) sender.Report(Failure(i));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_GE(sender.counters().dropped, 20000u - options.buffer_limit - options.batch_limit);
}

TEST(MetricsReporterTest, SendsDeltasOfCumulativeTotals) {
  zmq::context_t context(1);
  FakeBroker broker(context);
  detail::StageRecorder recorder;
  ReporterOptions options = FastOptions(broker.endpoint());
  options.reporter = "client";
  options.metrics_interval = 10s;  // only Flush triggers reports here
  MetricsReporter reporter(options, [&] { return recorder.Totals(); });

  recorder.Record("echo", "round_trip", std::chrono::microseconds(100));
  recorder.Record("echo", "round_trip", std::chrono::microseconds(300));
  std::thread flusher([&] { EXPECT_TRUE(reporter.Flush(5s)); });
  auto submit = broker.ReceiveSubmit();
  ASSERT_TRUE(submit);
  auto envelope = detail::DecodeEnvelope((*submit)[4]);
  EXPECT_EQ(envelope.service, "courier.metrics");
  EXPECT_EQ(envelope.mode, ReplyMode::kSend);
  detail::MetricsReport report = detail::DecodeMetricsReport(DecodeValue((*submit)[5]));
  EXPECT_EQ(report.process, "client");
  ASSERT_EQ(report.stages.size(), 1u);
  EXPECT_EQ(report.stages[0].count, 2u);
  EXPECT_EQ(report.stages[0].sum_ns, 400'000u);
  EXPECT_EQ(report.stages[0].min_ns, 100'000u);
  EXPECT_EQ(report.stages[0].max_ns, 300'000u);
  broker.Accept(*submit);
  flusher.join();

  recorder.Record("echo", "round_trip", std::chrono::microseconds(200));
  std::thread again([&] { EXPECT_TRUE(reporter.Flush(5s)); });
  submit = broker.ReceiveSubmit();
  ASSERT_TRUE(submit);
  report = detail::DecodeMetricsReport(DecodeValue((*submit)[5]));
  ASSERT_EQ(report.stages.size(), 1u);
  EXPECT_EQ(report.stages[0].count, 1u);  // only the new sample
  EXPECT_EQ(report.stages[0].sum_ns, 200'000u);
  broker.Accept(*submit);
  again.join();
  EXPECT_EQ(reporter.counters().sent, 2u);
}

TEST(MetricsReporterTest, AnUndeliveredIntervalIsCoveredByTheNextReport) {
  zmq::context_t context(1);
  FakeBroker broker(context);
  detail::StageRecorder recorder;
  ReporterOptions options = FastOptions(broker.endpoint());
  options.metrics_interval = 10s;
  MetricsReporter reporter(options, [&] { return recorder.Totals(); });
  recorder.Record("echo", "handle", std::chrono::microseconds(100));
  std::thread flusher([&] { EXPECT_FALSE(reporter.Flush(1s)); });
  auto submit = broker.ReceiveSubmit();
  ASSERT_TRUE(submit);
  broker.Refuse(*submit, ErrorCode::kBadRequest);
  flusher.join();
  recorder.Record("echo", "handle", std::chrono::microseconds(100));
  std::thread again([&] { EXPECT_TRUE(reporter.Flush(5s)); });
  submit = broker.ReceiveSubmit();
  ASSERT_TRUE(submit);
  const auto report = detail::DecodeMetricsReport(DecodeValue((*submit)[5]));
  ASSERT_EQ(report.stages.size(), 1u);
  EXPECT_EQ(report.stages[0].count, 2u);
  broker.Accept(*submit);
  again.join();
}

}  // namespace
}  // namespace courier
