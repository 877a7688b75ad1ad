// The plugin API as a plugin author sees it: service classes in every supported shape,
// driven through the adapter the host uses.
#include "courier/plugin.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>

namespace courier {
namespace {

using ::testing::HasSubstr;

struct Resize {
  std::string path;
  std::uint32_t width = 0;
  MSGPACK_DEFINE_MAP(path, width);
};
struct Resized {
  std::string path;
  std::uint64_t bytes = 0;
  MSGPACK_DEFINE(path, bytes);
};

// Typed request and reply, settings read in the constructor.
class ResizeService {
 public:
  static constexpr std::string_view kName = "resize";
  explicit ResizeService(const ConfigSection& config)
      : max_width_(static_cast<std::uint32_t>(config.GetInt("max_width", 4096, 1, 1 << 16))) {
    config.RejectUnknownKeys();
  }
  Resized Handle(const Resize& job) const {
    if (job.width > max_width_) throw Error(ErrorCode::kInvalidPayload, "width too large");
    return {job.path + ".out", job.width * 2ull};
  }

 private:
  const std::uint32_t max_width_;
};

// Dynamic Value, job context, not idempotent, no settings.
class Counter {
 public:
  static constexpr std::string_view kName = "counter";
  static constexpr bool kIdempotent = false;
  Value Handle(Value request, const JobContext& job) {
    return Value::Object({{"n", ++calls_}, {"attempt", job.attempt()}, {"echo", std::move(request)}});
  }
  std::atomic<int> calls_{0};
};

// void reply, noexcept, embedded schema.
class Sink {
 public:
  static constexpr std::string_view kName = "sink";
  static constexpr std::string_view kSchema = "[request]\ntype = \"string\"\n";
  void Handle(const std::string&) const noexcept {}
};

static_assert(Service<ResizeService>);
static_assert(Service<Counter>);
static_assert(Service<Sink>);
static_assert(!Service<int>);

struct NoHandle {
  static constexpr std::string_view kName = "x";
};
static_assert(!Service<NoHandle>);

std::string Invoke(detail::ServiceInstance& instance, const std::string& plaintext, JobContext context = {}) {
  Value decoded = DecodeValue(plaintext);
  return instance.Handle(plaintext, std::move(decoded), context);
}

TEST(PluginApi, TypedHandlersDecodeAndEncodeStructs) {
  detail::ServiceModel<ResizeService> model(ConfigSection::Parse("max_width = 100", "t"));
  const std::string reply = Invoke(model, Encode(Resize{"a.png", 64}));
  const Resized resized = Decode<Resized>(reply);
  EXPECT_EQ(resized.path, "a.png.out");
  EXPECT_EQ(resized.bytes, 128u);
}

TEST(PluginApi, TypeMismatchIsInvalidPayload) {
  detail::ServiceModel<ResizeService> model(ConfigSection::Empty());
  try {
    Invoke(model, EncodeValue(Value("not a map")));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidPayload);
  }
}

TEST(PluginApi, MissingMapFieldsKeepTheirDefaultsWrongTypesAreInvalid) {
  detail::ServiceModel<ResizeService> model(ConfigSection::Empty());
  const Resized resized = Decode<Resized>(Invoke(model, EncodeValue(Value::Object({{"path", "p"}}))));
  EXPECT_EQ(resized.bytes, 0u);  // width defaulted to 0
  try {
    Invoke(model, EncodeValue(Value::Object({{"path", 42}})));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidPayload);
  }
}

TEST(PluginApi, HandlerErrorsPropagateWithTheirCode) {
  detail::ServiceModel<ResizeService> model(ConfigSection::Parse("max_width = 10", "t"));
  try {
    Invoke(model, Encode(Resize{"a", 11}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidPayload);
    EXPECT_STREQ(e.what(), "width too large");
  }
}

TEST(PluginApi, ConstructorsRejectUnknownKeys) {
  EXPECT_THROW(detail::ServiceModel<ResizeService>(ConfigSection::Parse("max_widht = 1", "t")), Error);
}

TEST(PluginApi, ValueHandlersSeeTheJob) {
  detail::ServiceModel<Counter> model(ConfigSection::Empty());
  Envelope envelope;
  envelope.service = "counter";
  envelope.attempt = 2;
  envelope.deadline_ms = NowUnixMs() + 1000;
  const Value reply = DecodeValue(Invoke(model, EncodeValue(Value("hi")), JobContext(envelope)));
  EXPECT_EQ(reply.At("n").AsInt(), 1);
  EXPECT_EQ(reply.At("attempt").AsInt(), 2);
  EXPECT_EQ(reply.At("echo").AsString(), "hi");
  EXPECT_EQ(model.service().calls_.load(), 1);
}

TEST(PluginApi, VoidRepliesAreNil) {
  detail::ServiceModel<Sink> model(ConfigSection::Empty());
  EXPECT_EQ(Invoke(model, EncodeValue(Value("x"))), std::string(1, '\xc0'));
}

TEST(PluginApi, DescriptorsCarryNameFlagsAndSchema) {
  constexpr CourierServiceV1 resize = detail::DescribeService<ResizeService>();
  EXPECT_EQ(std::string_view(resize.name, resize.name_size), "resize");
  EXPECT_EQ(resize.idempotent, 1u);
  EXPECT_EQ(resize.schema, nullptr);
  constexpr CourierServiceV1 counter = detail::DescribeService<Counter>();
  EXPECT_EQ(counter.idempotent, 0u);
  constexpr CourierServiceV1 sink = detail::DescribeService<Sink>();
  EXPECT_THAT(std::string(sink.schema, sink.schema_size), HasSubstr("[request]"));

  using Table = detail::PluginTable<ResizeService, Counter, Sink>;
  EXPECT_EQ(Table::kPlugin.abi_version, kPluginAbiVersion);
  EXPECT_EQ(Table::kPlugin.service_count, 3u);
  EXPECT_STREQ(Table::kPlugin.courier_version, COURIER_VERSION_STRING);
  static_assert(!detail::DistinctNames<ResizeService, ResizeService>());
}

TEST(JobContext, DeadlineArithmetic) {
  Envelope envelope;
  envelope.deadline_ms = NowUnixMs() + 5000;
  const JobContext context(envelope);
  EXPECT_GT(context.remaining().count(), 4000);
  EXPECT_FALSE(context.expired());
  envelope.deadline_ms = NowUnixMs() - 10;
  EXPECT_TRUE(JobContext(envelope).expired());
  EXPECT_FALSE(JobContext().expired());
}

}  // namespace
}  // namespace courier
