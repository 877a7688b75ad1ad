// Micro-benchmarks (Google Benchmark): the codecs, sealing and the broker's routing core
// alone — frames in, frames out, no sockets. Run by ops/bench; or directly:
//   build/bin/courier-microbench --benchmark_filter=Routing
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <initializer_list>
#include <new>
#include <string_view>
#include <vector>

#include "broker.hpp"
#include "courier/keyring.hpp"
#include "courier/value.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"

// Every C++ allocation of the process is counted, so a benchmark can report how many of
// them its measured code makes (BM_RoutingCore: allocs_per_job, 0 is the target).
namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

// GCC cannot tell that these replace the global pair, and warns about malloc/delete.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

using namespace courier;

Envelope SampleEnvelope() {
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = "echo";
  envelope.created_at_ms = NowUnixMs();
  envelope.deadline_ms = envelope.created_at_ms + 3'600'000;
  envelope.key_id = 1;
  return envelope;
}

void BM_EnvelopeEncode(benchmark::State& state) {
  const Envelope envelope = SampleEnvelope();
  for (auto _ : state) benchmark::DoNotOptimize(detail::EncodeEnvelope(envelope));
}
BENCHMARK(BM_EnvelopeEncode);

void BM_EnvelopeDecode(benchmark::State& state) {
  const std::string bytes = detail::EncodeEnvelope(SampleEnvelope());
  for (auto _ : state) benchmark::DoNotOptimize(detail::DecodeEnvelope(bytes));
}
BENCHMARK(BM_EnvelopeDecode);

void BM_ValueRoundTrip(benchmark::State& state) {
  const Value value = Value::Object({{"text", std::string(1000, 'x')}, {"n", 42}});
  for (auto _ : state) benchmark::DoNotOptimize(DecodeValue(EncodeValue(value)));
}
BENCHMARK(BM_ValueRoundTrip);

void BM_SealOpen(benchmark::State& state) {
  const Keyring keyring = Keyring::Generate();
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'p');
  for (auto _ : state) {
    const auto sealed = keyring.Seal(SampleEnvelope(), payload);
    benchmark::DoNotOptimize(keyring.Open(sealed.envelope, sealed.payload));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SealOpen)->Arg(64)->Arg(1024)->Arg(65536);

class DiscardOutbox final : public broker::Outbox {
 public:
  broker::SendResult Send(std::span<zmq::message_t> frames) override {
    last_request.clear();
    if (frames.size() == 6 && frames[3].size() == 1 && *static_cast<const char*>(frames[3].data()) == 0x02) {
      last_request.assign(static_cast<const char*>(frames[4].data()), frames[4].size());
    }
    return broker::SendResult::kSent;
  }
  std::string last_request;
};

// Delivers a message of these frames to the core.
void Deliver(broker::Broker& core, std::initializer_list<std::string_view> parts, const broker::Now& now) {
  std::vector<zmq::message_t> frames;
  for (const std::string_view part : parts) frames.emplace_back(part.data(), part.size());
  core.OnMessage(frames, now);
}

// Queues `count` jobs for a service nobody serves: every per-message path must cost the
// same whatever the broker holds (the state.range(0) of the routing benchmarks).
void QueueBacklog(broker::Broker& core, std::int64_t count, const broker::Now& now) {
  Envelope envelope = SampleEnvelope();
  envelope.service = "backlog";
  for (std::int64_t i = 0; i < count; ++i) {
    envelope.job_id = JobId::Random();
    const std::string bytes = detail::EncodeEnvelope(envelope);
    Deliver(core, {"B1", "", "CRC01", std::string_view("\x01", 1), bytes, "queued"}, now);
  }
}

// One job through the routing core: SUBMIT from a client, REQUEST to a worker, REPLY back,
// REPLY to the client. Input frames are built per job as a socket would deliver them.
void BM_RoutingCore(benchmark::State& state) {
  DiscardOutbox outbox;
  broker::BrokerConfig config;
  broker::Broker core(config, outbox, 1);
  const broker::Now now = broker::Now::Real();
  QueueBacklog(core, state.range(0), now);
  detail::ReadyInfo info;
  info.capacity = 1000;
  const std::string ready = detail::EncodeReadyInfo(info);
  {
    std::vector<zmq::message_t> frames;
    for (const std::string_view part : {std::string_view("W1"), std::string_view(""), std::string_view("CRW01"),
                                        std::string_view("\x01", 1), std::string_view("echo"), std::string_view(ready)}) {
      frames.emplace_back(part.data(), part.size());
    }
    core.OnMessage(frames, now);
  }
  Envelope envelope = SampleEnvelope();
  const std::string payload(1024, 'p');
  std::vector<zmq::message_t> submit;
  std::vector<zmq::message_t> reply;
  submit.reserve(6);
  reply.reserve(6);
  std::uint64_t allocations = 0;
  for (auto _ : state) {
    envelope.job_id.bytes[0]++;
    envelope.job_id.bytes[1] += envelope.job_id.bytes[0] == 0;
    const std::string envelope_bytes = detail::EncodeEnvelope(envelope);
    submit.clear();
    submit.emplace_back("C1", 2);
    submit.emplace_back();
    submit.emplace_back("CRC01", 5);
    submit.emplace_back("\x01", 1);
    submit.emplace_back(envelope_bytes.data(), envelope_bytes.size());
    submit.emplace_back(payload.data(), payload.size());
    const std::uint64_t before_submit = g_allocations.load(std::memory_order_relaxed);
    core.OnMessage(submit, now);
    allocations += g_allocations.load(std::memory_order_relaxed) - before_submit;
    reply.clear();
    reply.emplace_back("W1", 2);
    reply.emplace_back();
    reply.emplace_back("CRW01", 5);
    reply.emplace_back("\x03", 1);
    reply.emplace_back(outbox.last_request.data(), outbox.last_request.size());
    reply.emplace_back(payload.data(), payload.size());
    const std::uint64_t before_reply = g_allocations.load(std::memory_order_relaxed);
    core.OnMessage(reply, now);
    allocations += g_allocations.load(std::memory_order_relaxed) - before_reply;
  }
  state.SetItemsProcessed(state.iterations());
  // C++ allocations inside the routing core only (the frames a socket would deliver are
  // built outside the count), per job.
  state.counters["allocs_per_job"] =
      benchmark::Counter(static_cast<double>(allocations), benchmark::Counter::kAvgIterations);
  if (core.LiveJobs() != static_cast<std::size_t>(state.range(0))) state.SkipWithError("jobs left in the routing core");
}
BENCHMARK(BM_RoutingCore)->Arg(10)->Arg(100000);

// One plain Majordomo job through the routing core: an MDP client's request, the REQUEST to
// an MDP worker (which holds one job at a time), its REPLY, the reply to the client.
void BM_MdpRoutingCore(benchmark::State& state) {
  DiscardOutbox outbox;
  broker::BrokerConfig config;
  broker::Broker core(config, outbox, 1);
  const broker::Now now = broker::Now::Real();
  QueueBacklog(core, state.range(0), now);
  Deliver(core, {"W1", "", "MDPW01", std::string_view("\x01", 1), "echo"}, now);
  const std::string body(1024, 'p');
  for (auto _ : state) {
    Deliver(core, {"C1", "", "MDPC01", "echo", body}, now);
    Deliver(core, {"W1", "", "MDPW01", std::string_view("\x03", 1), "C1", "", body}, now);
  }
  state.SetItemsProcessed(state.iterations());
  if (core.LiveJobs() != static_cast<std::size_t>(state.range(0))) state.SkipWithError("jobs left in the routing core");
}
BENCHMARK(BM_MdpRoutingCore)->Arg(10)->Arg(100000);

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::off);  // the routing core logs each READY
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
