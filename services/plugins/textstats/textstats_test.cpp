// textstats as its users see it: the handler, its settings, and its payload schema.
#include "textstats.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plugin/payload_schema.hpp"

namespace textstats {
namespace {

using courier::ConfigSection;
using courier::Value;
using ::testing::HasSubstr;

TextStats Make(std::string_view toml = "") { return TextStats(ConfigSection::Parse(toml, "textstats.toml")); }

TEST(TextStats, CountsWordsLinesAndBytes) {
  const Reply reply = Make().Handle({"The cat saw the dog.\nThe END", std::nullopt});
  EXPECT_EQ(reply.words, 7u);
  EXPECT_EQ(reply.unique, 5u);
  EXPECT_EQ(reply.lines, 2u);
  EXPECT_EQ(reply.bytes, 28u);
  ASSERT_GE(reply.top.size(), 2u);
  EXPECT_EQ(reply.top[0], (WordCount{"the", 3}));
  EXPECT_EQ(reply.top[1], (WordCount{"cat", 1}));  // ties in alphabetical order
}

TEST(TextStats, HashesTheTextWithSha256) {
  EXPECT_EQ(Make().Handle({"abc", std::nullopt}).sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Make().Handle({"", std::nullopt}).sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(TextStats, TopHonoursRequestAndDefault) {
  const std::string text = "a b c d e f g h i j k l";
  EXPECT_EQ(Make().Handle({text, std::nullopt}).top.size(), 10u);
  EXPECT_EQ(Make().Handle({text, 3u}).top.size(), 3u);
  EXPECT_EQ(Make("default_top = 2").Handle({text, std::nullopt}).top.size(), 2u);
  EXPECT_EQ(Make().Handle({"x", 50u}).top.size(), 1u);
}

TEST(TextStats, SettingsChangeFoldingStopwordsAndWordLength) {
  EXPECT_EQ(Make("lowercase = false").Handle({"Hi hi", std::nullopt}).unique, 2u);
  const Reply reply = Make("stopwords = [\"The\"]").Handle({"the the cat", std::nullopt});
  ASSERT_EQ(reply.top.size(), 1u);
  EXPECT_EQ(reply.top[0].word, "cat");
  EXPECT_EQ(reply.words, 3u);
  EXPECT_EQ(Make("max_word_bytes = 3").Handle({"abcdef abcxyz", std::nullopt}).top[0], (WordCount{"abc", 2}));
}

TEST(TextStats, KeepsUtf8InsideWords) {
  const Reply reply = Make().Handle({"caf\xc3\xa9 caf\xc3\xa9 don't", std::nullopt});
  EXPECT_EQ(reply.unique, 2u);
  EXPECT_EQ(reply.top[0], (WordCount{"caf\xc3\xa9", 2}));
  EXPECT_EQ(reply.top[1].word, "don't");
}

TEST(TextStats, RejectsBadSettings) {
  EXPECT_THROW(Make("default_top = 0"), courier::Error);
  EXPECT_THROW(Make("defualt_top = 5"), courier::Error);
}

class SchemaTest : public ::testing::Test {
 protected:
  courier::detail::PayloadSchema schema = courier::detail::PayloadSchema::LoadFile(TEXTSTATS_SCHEMA);

  std::string Violation(const Value& request) {
    try {
      schema.Validate(request);
      return "";
    } catch (const courier::Error& e) {
      return e.what();
    }
  }
};

TEST_F(SchemaTest, RequestsAreCheckedBeforeTheHandler) {
  EXPECT_EQ(Violation(Value::Object({{"text", "hello"}, {"top", 5}})), "");
  EXPECT_EQ(Violation(Value::Object({{"text", "hello"}})), "");
  EXPECT_THAT(Violation(Value::Object({{"top", 5}})), HasSubstr("request.text: required"));
  EXPECT_THAT(Violation(Value::Object({{"text", "x"}, {"top", 0}})), HasSubstr("in [1, 100], got 0"));
  EXPECT_THAT(Violation(Value::Object({{"text", std::string(1024 * 1024 + 1, 'a')}})),
              HasSubstr("at most 1048576 bytes"));
  EXPECT_THAT(Violation(Value::Object({{"text", "x"}, {"lang", "en"}})), HasSubstr("unknown field"));
}

TEST_F(SchemaTest, RepliesMatchTheDocumentedShape) {
  const Reply reply = Make().Handle({"one two two three three three", 2u});
  EXPECT_TRUE(schema.ValidateReply(courier::ToValue(reply)));
}

TEST(TextStatsPlugin, DecodesItsTypedRequestThroughTheAdapter) {
  courier::detail::ServiceModel<TextStats> model(ConfigSection::Empty());
  const std::string plaintext = courier::EncodeValue(Value::Object({{"text", "b a b"}, {"top", 1}}));
  courier::JobContext context;
  const Value reply = courier::DecodeValue(model.Handle(plaintext, courier::DecodeValue(plaintext), context));
  EXPECT_EQ(reply.At("words").AsInt(), 3);
  ASSERT_EQ(reply.At("top").size(), 1u);
  EXPECT_EQ(reply.At("top").AsArray()[0].At("word").AsString(), "b");
}

}  // namespace
}  // namespace textstats
