#include "courier/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "courier/error.hpp"

namespace courier {
namespace {

using std::chrono::milliseconds;
using testing::HasSubstr;

// Runs `body`, expects a kConfig error and returns its message for further matching.
template <typename Body>
std::string ConfigErrorOf(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
    return e.what();
  }
  ADD_FAILURE() << "expected courier::Error(kConfig)";
  return {};
}

// A file in the test's temporary directory, removed when the test ends.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& text)
      : path_(std::filesystem::path(testing::TempDir()) / name) {
    std::ofstream(path_) << text;
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

constexpr std::string_view kBroker = R"(# broker settings
[broker]
endpoint = "tcp://*:5555"
queue_limit = 1000
ratio = 0.75
whole_ratio = 1
verbose = true
heartbeat = "2500ms"
expiry = 3000
peers = ["a", "b"]
mode = "fair"

[broker.limits]
max_jobs = 5

[[broker.listener]]
name = "one"

[[broker.listener]]
name = "two"
)";

TEST(ConfigTest, GettersReturnTheFileValues) {
  const ConfigSection root = ConfigSection::Parse(kBroker, "broker.toml");
  const ConfigSection broker = root.Section("broker");
  EXPECT_EQ(broker.path(), "broker");
  EXPECT_EQ(broker.source(), "broker.toml");
  EXPECT_EQ(broker.GetString("endpoint", "x"), "tcp://*:5555");
  EXPECT_EQ(broker.GetOptionalString("endpoint"), "tcp://*:5555");
  EXPECT_EQ(broker.GetInt("queue_limit", 1, 1, 10'000'000), 1000);
  EXPECT_DOUBLE_EQ(broker.GetDouble("ratio", 0.0, 0.0, 1.0), 0.75);
  EXPECT_DOUBLE_EQ(broker.GetDouble("whole_ratio", 0.0, 0.0, 1.0), 1.0);
  EXPECT_TRUE(broker.GetBool("verbose", false));
  EXPECT_EQ(broker.GetDuration("heartbeat", milliseconds(1), milliseconds(1), milliseconds(60'000)),
            milliseconds(2500));
  EXPECT_EQ(broker.GetDuration("expiry", milliseconds(1), milliseconds(1), milliseconds(60'000)),
            milliseconds(3000));
  EXPECT_EQ(broker.GetStringArray("peers", {}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(broker.GetEnum("mode", "lru", {"lru", "fair"}), "fair");
  EXPECT_EQ(broker.Section("limits").GetInt("max_jobs", 1, 1, 10), 5);
  EXPECT_EQ(broker.SectionArray("listener").size(), 2u);
  EXPECT_NO_THROW(broker.RejectUnknownKeys());
  EXPECT_NO_THROW(root.RejectUnknownKeys());
}

TEST(ConfigTest, AbsentKeysYieldDefaults) {
  const ConfigSection section = ConfigSection::Parse("present = 1\n", "a.toml");
  EXPECT_EQ(section.GetString("s", "fallback"), "fallback");
  EXPECT_EQ(section.GetOptionalString("s"), std::nullopt);
  EXPECT_EQ(section.GetInt("i", 42, 0, 100), 42);
  EXPECT_DOUBLE_EQ(section.GetDouble("d", 0.5, 0.0, 1.0), 0.5);
  EXPECT_FALSE(section.GetBool("b", false));
  EXPECT_TRUE(section.GetBool("b", true));
  EXPECT_EQ(section.GetDuration("t", milliseconds(250), milliseconds(1), milliseconds(1000)),
            milliseconds(250));
  EXPECT_EQ(section.GetStringArray("a", {"x"}), (std::vector<std::string>{"x"}));
  EXPECT_EQ(section.GetEnum("e", "text", {"text", "json"}), "text");
  EXPECT_TRUE(section.SectionArray("none").empty());
  const ConfigSection absent = section.Section("nested");
  EXPECT_EQ(absent.path(), "nested");
  EXPECT_TRUE(absent.Keys().empty());
  EXPECT_EQ(absent.GetInt("deep", 7, 0, 10), 7);
  EXPECT_NO_THROW(absent.RejectUnknownKeys());
}

TEST(ConfigTest, EmptySectionRunsOnDefaults) {
  const ConfigSection section = ConfigSection::Empty();
  EXPECT_EQ(section.source(), "<defaults>");
  EXPECT_EQ(section.path(), "");
  EXPECT_FALSE(section.Has("anything"));
  EXPECT_TRUE(section.Keys().empty());
  EXPECT_EQ(section.Section("broker").GetInt("queue_limit", 100, 1, 1000), 100);
  EXPECT_NO_THROW(section.RejectUnknownKeys());
  EXPECT_EQ(ConfigSection::Empty("cli").source(), "cli");
}

TEST(ConfigTest, HasAndKeysInFileOrder) {
  const ConfigSection section = ConfigSection::Parse(
      "zeta = 1\nalpha = 2\n[services.echo]\n[services.add]\n[services.bar]\n", "s.toml");
  EXPECT_TRUE(section.Has("zeta"));
  EXPECT_FALSE(section.Has("beta"));
  EXPECT_EQ(section.Keys(), (std::vector<std::string>{"zeta", "alpha", "services"}));
  EXPECT_EQ(section.Section("services").Keys(),
            (std::vector<std::string>{"echo", "add", "bar"}));
}

TEST(ConfigTest, LoadFileReadsAFile) {
  const TempFile file("config_test_load.toml", "[log]\nlevel = \"debug\"\n");
  const ConfigSection root = ConfigSection::LoadFile(file.path());
  EXPECT_EQ(root.source(), file.path().string());
  EXPECT_EQ(root.Section("log").GetString("level", "info"), "debug");
}

TEST(ConfigTest, UnparseableFileNamesFileAndLine) {
  const TempFile file("config_test_bad.toml", "[broker]\nendpoint = \"tcp://x\"\nlimit = = 3\n");
  const std::string message = ConfigErrorOf([&] { ConfigSection::LoadFile(file.path()); });
  EXPECT_THAT(message, HasSubstr(file.path().string() + ":3:"));
}

TEST(ConfigTest, ParseErrorUsesSourceName) {
  const std::string message =
      ConfigErrorOf([] { ConfigSection::Parse("a = 1\nb = [1,\n", "inline.toml"); });
  EXPECT_THAT(message, testing::StartsWith("inline.toml:"));
}

TEST(ConfigTest, MissingFileSaysCannotRead) {
  const std::filesystem::path path =
      std::filesystem::path(testing::TempDir()) / "config_test_does_not_exist.toml";
  const std::string message = ConfigErrorOf([&] { ConfigSection::LoadFile(path); });
  EXPECT_THAT(message, HasSubstr(path.string() + ": cannot read: "));
  EXPECT_THAT(message, HasSubstr("No such file"));
}

TEST(ConfigTest, WrongTypeNamesExpectedAndActual) {
  const ConfigSection broker =
      ConfigSection::Parse("[broker]\nqueue_limit = \"many\"\nverbose = 1\n", "broker.toml")
          .Section("broker");
  EXPECT_EQ(ConfigErrorOf([&] { broker.GetInt("queue_limit", 1, 1, 10); }),
            "broker.toml:2:1: broker.queue_limit: expected an integer, got a string");
  EXPECT_EQ(ConfigErrorOf([&] { broker.GetBool("verbose", false); }),
            "broker.toml:3:1: broker.verbose: expected a boolean, got an integer");
  EXPECT_THAT(ConfigErrorOf([&] { broker.GetString("verbose", ""); }),
              HasSubstr("broker.verbose: expected a string, got an integer"));
  EXPECT_THAT(ConfigErrorOf([&] { broker.GetDouble("queue_limit", 0, 0, 1); }),
              HasSubstr("broker.queue_limit: expected a number, got a string"));
}

TEST(ConfigTest, WrongElementTypeInStringArray) {
  const ConfigSection section = ConfigSection::Parse("peers = [\"a\", 2]\n", "p.toml");
  EXPECT_THAT(ConfigErrorOf([&] { section.GetStringArray("peers", {}); }),
              HasSubstr("p.toml:1:"));
  EXPECT_THAT(ConfigErrorOf([&] { section.GetStringArray("peers", {}); }),
              HasSubstr("peers[1]: expected a string, got an integer"));
}

TEST(ConfigTest, OutOfRangeShowsRangeAndValue) {
  const ConfigSection broker =
      ConfigSection::Parse("[broker]\nqueue_limit = 0\nratio = 2.5\n", "broker.toml")
          .Section("broker");
  EXPECT_EQ(ConfigErrorOf([&] { broker.GetInt("queue_limit", 1, 1, 10'000'000); }),
            "broker.toml:2:1: broker.queue_limit: expected an integer in [1, 10000000], got 0");
  EXPECT_EQ(ConfigErrorOf([&] { broker.GetDouble("ratio", 0.5, 0.0, 1.0); }),
            "broker.toml:3:1: broker.ratio: expected a number in [0, 1], got 2.5");
}

TEST(ConfigTest, UnknownKeySuggestsTheNearestReadKey) {
  const ConfigSection broker = ConfigSection::Parse(
                                   "[broker]\nendpoint = \"x\"\nqueue_limt = 5\n", "broker.toml")
                                   .Section("broker");
  broker.GetString("endpoint", "");
  broker.GetInt("queue_limit", 1, 1, 10);
  EXPECT_EQ(ConfigErrorOf([&] { broker.RejectUnknownKeys(); }),
            "broker.toml:3:1: broker.queue_limt: unknown key (did you mean \"queue_limit\"?)");
}

TEST(ConfigTest, UnknownKeyWithoutNearMatchHasNoSuggestion) {
  const ConfigSection section = ConfigSection::Parse("a = 1\ncompletely_else = 2\n", "x.toml");
  section.GetInt("a", 0, 0, 10);
  const std::string message = ConfigErrorOf([&] { section.RejectUnknownKeys(); });
  EXPECT_EQ(message, "x.toml:2:1: completely_else: unknown key");
}

TEST(ConfigTest, UnknownKeyReportsTheFirstInFileOrder) {
  const ConfigSection section = ConfigSection::Parse("zz = 1\naa = 2\n", "x.toml");
  EXPECT_THAT(ConfigErrorOf([&] { section.RejectUnknownKeys(); }), HasSubstr("x.toml:1:1: zz:"));
}

TEST(ConfigTest, ReadKeysAreSharedBetweenCopiesAndSections) {
  const ConfigSection root =
      ConfigSection::Parse("[a]\nx = 1\ny = 2\n[b]\nz = 3\n", "shared.toml");
  const ConfigSection first = root.Section("a");
  const ConfigSection copy = first;  // NOLINT: the copy is the point
  first.GetInt("x", 0, 0, 10);
  root.Section("a").GetInt("y", 0, 0, 10);
  EXPECT_NO_THROW(copy.RejectUnknownKeys());
  // Another table's reads are tracked separately.
  EXPECT_THAT(ConfigErrorOf([&] { root.Section("b").RejectUnknownKeys(); }), HasSubstr("b.z"));
  // Section() marked "a" and "b" read on the root.
  EXPECT_NO_THROW(root.RejectUnknownKeys());
}

TEST(ConfigTest, HasAndKeysDoNotMarkKeysRead) {
  const ConfigSection section = ConfigSection::Parse("a = 1\n", "x.toml");
  EXPECT_TRUE(section.Has("a"));
  EXPECT_EQ(section.Keys().size(), 1u);
  EXPECT_THAT(ConfigErrorOf([&] { section.RejectUnknownKeys(); }), HasSubstr("a: unknown key"));
}

TEST(ConfigTest, BadEnumListsTheAllowedValues) {
  const ConfigSection log =
      ConfigSection::Parse("[log]\nformat = \"xml\"\n", "worker.toml").Section("log");
  EXPECT_EQ(ConfigErrorOf([&] { log.GetEnum("format", "text", {"text", "json"}); }),
            "worker.toml:2:1: log.format: expected one of \"text\", \"json\", got \"xml\"");
}

TEST(ConfigTest, DurationUnits) {
  const ConfigSection section = ConfigSection::Parse(
      "ms = \"250ms\"\ns = \"3s\"\nm = \"5m\"\nh = \"1h\"\nfrac = \"1.5s\"\nint = 42\n", "d.toml");
  const milliseconds max = milliseconds(24 * 3'600'000);
  const auto get = [&](std::string_view key) {
    return section.GetDuration(key, milliseconds(0), milliseconds(0), max);
  };
  EXPECT_EQ(get("ms"), milliseconds(250));
  EXPECT_EQ(get("s"), milliseconds(3000));
  EXPECT_EQ(get("m"), milliseconds(300'000));
  EXPECT_EQ(get("h"), milliseconds(3'600'000));
  EXPECT_EQ(get("frac"), milliseconds(1500));
  EXPECT_EQ(get("int"), milliseconds(42));
}

TEST(ConfigTest, BadDurations) {
  const ConfigSection section = ConfigSection::Parse(
      "[t]\nunitless = \"3\"\nunknown = \"3d\"\nspaced = \"3 s\"\nfloat = 1.5\n"
      "infinite = \"infs\"\nlong = \"2h\"\n",
      "d.toml");
  const ConfigSection t = section.Section("t");
  const auto get = [&](std::string_view key) {
    t.GetDuration(key, milliseconds(1), milliseconds(1), milliseconds(3'600'000));
  };
  EXPECT_THAT(ConfigErrorOf([&] { get("unitless"); }),
              HasSubstr("d.toml:2:1: t.unitless: expected a duration such as"));
  EXPECT_THAT(ConfigErrorOf([&] { get("unknown"); }), HasSubstr("d.toml:3:1: t.unknown:"));
  EXPECT_THAT(ConfigErrorOf([&] { get("unknown"); }), HasSubstr("got \"3d\""));
  EXPECT_THAT(ConfigErrorOf([&] { get("spaced"); }), HasSubstr("d.toml:4:1: t.spaced:"));
  EXPECT_THAT(ConfigErrorOf([&] { get("float"); }),
              HasSubstr("d.toml:5:1: t.float: expected a duration"));
  EXPECT_THAT(ConfigErrorOf([&] { get("float"); }), HasSubstr("got a floating-point number"));
  EXPECT_THAT(ConfigErrorOf([&] { get("infinite"); }), HasSubstr("t.infinite:"));
  EXPECT_EQ(ConfigErrorOf([&] { get("long"); }),
            "d.toml:7:1: t.long: expected a duration in [1ms, 1h], got 2h");
}

TEST(ConfigTest, SectionOfANonTableIsAnError) {
  const ConfigSection root = ConfigSection::Parse("\nbroker = 5\n", "broker.toml");
  EXPECT_EQ(ConfigErrorOf([&] { root.Section("broker"); }),
            "broker.toml:2:1: broker: expected a table, got an integer");
  EXPECT_THAT(ConfigErrorOf([&] { root.SectionArray("broker"); }),
              HasSubstr("broker.toml:2:1: broker: expected an array of tables, got an integer"));
}

TEST(ConfigTest, SectionArrayGivesEachTableWithItsPath) {
  const ConfigSection root = ConfigSection::Parse(kBroker, "broker.toml");
  const std::vector<ConfigSection> listeners = root.Section("broker").SectionArray("listener");
  ASSERT_EQ(listeners.size(), 2u);
  EXPECT_EQ(listeners[0].GetString("name", ""), "one");
  EXPECT_EQ(listeners[1].GetString("name", ""), "two");
  EXPECT_EQ(listeners[1].path(), "broker.listener[1]");
  EXPECT_NO_THROW(listeners[0].RejectUnknownKeys());
  EXPECT_THAT(ConfigErrorOf([&] { listeners[1].GetInt("name", 0, 0, 1); }),
              HasSubstr("broker.toml:20:1: broker.listener[1].name: expected an integer"));
}

TEST(ConfigTest, SectionArrayRejectsNonTableElements) {
  const ConfigSection root = ConfigSection::Parse("items = [1, 2]\n", "a.toml");
  EXPECT_THAT(ConfigErrorOf([&] { root.SectionArray("items"); }),
              HasSubstr("items[0]: expected a table, got an integer"));
}

TEST(ConfigTest, DescribeFormatsAComponentsOwnError) {
  const ConfigSection broker =
      ConfigSection::Parse("[broker]\n  endpoint = \"tcp://x\"\n", "broker.toml")
          .Section("broker");
  EXPECT_EQ(broker.Describe("endpoint", "cannot bind"),
            "broker.toml:2:3: broker.endpoint: cannot bind");
  // An absent key points at its table's header.
  EXPECT_EQ(broker.Describe("missing", "is required"),
            "broker.toml:1:1: broker.missing: is required");
  // With no position at all, the location is just the source.
  EXPECT_EQ(ConfigSection::Empty("cli").Describe("x", "bad"), "cli: x: bad");
}

}  // namespace
}  // namespace courier
