#include "payload_schema.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "courier/error.hpp"

namespace courier::detail {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kSchema = R"(
schema_version = 1
service = "shop"
description = "orders"

[request]
type = "map"
additional_fields = false

[request.fields.sku]
type = "string"
required = true
min_length = 3
max_length = 8

[request.fields.quantity]
type = "integer"
required = true
min = 1
max = 100

[request.fields.price]
type = "float"
min = 0.0

[request.fields.mode]
type = "string"
enum = ["fast", "cheap"]

[request.fields.tags]
type = "array"
max_items = 3
items = { type = "string", max_length = 5 }

[request.fields.note]
type = "string"
nullable = true

[request.fields.extra]
type = "map"
values = { type = "integer" }

[reply]
type = "map"
[reply.fields.ok]
type = "bool"
required = true
)";

Value Order() {
  return Value::Object({{"sku", "abc-1"}, {"quantity", 2}});
}

std::string Violation(const PayloadSchema& schema, const Value& value) {
  try {
    schema.Validate(value);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidPayload);
    return e.what();
  }
  return "";
}

class SchemaTest : public ::testing::Test {
 protected:
  PayloadSchema schema = PayloadSchema::Parse(kSchema, "shop.toml");
};

TEST_F(SchemaTest, AcceptsAConformingPayload) {
  Value order = Order();
  order.Set("price", 2.5);
  order.Set("mode", "fast");
  order.Set("tags", Value::Array{"a", "b"});
  order.Set("note", nullptr);
  order.Set("extra", Value::Object({{"x", 1}}));
  EXPECT_EQ(Violation(schema, order), "");
  EXPECT_EQ(schema.service(), "shop");
}

TEST_F(SchemaTest, FloatsAcceptIntegers) {
  Value order = Order();
  order.Set("price", 3);
  EXPECT_EQ(Violation(schema, order), "");
}

TEST_F(SchemaTest, NamesTheFirstViolationWithItsPath) {
  EXPECT_EQ(Violation(schema, Value(5)), "request: expected a map, got an integer");
  EXPECT_EQ(Violation(schema, Value::Object({{"sku", "abcd"}})), "request.quantity: required field is missing");

  Value order = Order();
  order.Set("quantity", 500);
  EXPECT_EQ(Violation(schema, order), "request.quantity: expected an integer in [1, 100], got 500");
  order.Set("quantity", -5);
  EXPECT_EQ(Violation(schema, order), "request.quantity: expected an integer in [1, 100], got -5");
  order.Set("quantity", "two");
  EXPECT_EQ(Violation(schema, order), "request.quantity: expected an integer, got a string");

  order = Order();
  order.Set("sku", "ab");
  EXPECT_EQ(Violation(schema, order), "request.sku: expected a string of 3..8 bytes, got 2 bytes");

  order = Order();
  order.Set("mode", "slow");
  EXPECT_EQ(Violation(schema, order), "request.mode: expected one of \"fast\", \"cheap\", got \"slow\"");

  order = Order();
  order.Set("price", -1.5);
  EXPECT_EQ(Violation(schema, order), "request.price: expected a float >= 0, got -1.5");

  order = Order();
  order.Set("tags", Value::Array{"a", "toolong"});
  EXPECT_EQ(Violation(schema, order), "request.tags[1]: expected a string of at most 5 bytes, got 7 bytes");
  order.Set("tags", Value::Array{"a", "b", "c", "d"});
  EXPECT_EQ(Violation(schema, order), "request.tags: expected an array of at most 3 items, got 4");

  order = Order();
  order.Set("surprise", true);
  EXPECT_EQ(Violation(schema, order), "request.surprise: unknown field (the schema allows no additional fields)");

  order = Order();
  order.Set("extra", Value::Object({{"x", "y"}}));
  EXPECT_EQ(Violation(schema, order), "request.extra.x: expected an integer, got a string");

  order = Order();
  order.Set("note", 3);
  EXPECT_EQ(Violation(schema, order), "request.note: expected a string, got an integer");
}

TEST_F(SchemaTest, HugeUnsignedIntegersAreOutOfRange) {
  Value order = Order();
  order.Set("quantity", Value(static_cast<unsigned long long>(UINT64_MAX)));
  EXPECT_THAT(Violation(schema, order), HasSubstr("in [1, 100], got 18446744073709551615"));
}

TEST_F(SchemaTest, ChecksRepliesWhenDescribed) {
  EXPECT_TRUE(schema.ValidateReply(Value::Object({{"ok", true}})));
  EXPECT_THROW(schema.ValidateReply(Value::Object({})), Error);
  EXPECT_FALSE(PayloadSchema::Parse("[request]\ntype = \"any\"\n", "x").ValidateReply(Value(1)));
}

std::string ConfigError(std::string_view text) {
  try {
    PayloadSchema::Parse(text, "bad.toml");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
    return e.what();
  }
  return "";
}

TEST(SchemaLoading, RejectsMistakesWithTheirKey) {
  EXPECT_THAT(ConfigError("[request]\ntype = \"map\"\nadditional = false\n"), HasSubstr("request.additional"));
  EXPECT_THAT(ConfigError("[request]\ntype = \"integer\"\nmin_length = 1\n"),
              HasSubstr("applies to string and binary only"));
  EXPECT_THAT(ConfigError("[request]\ntype = \"text\"\n"), HasSubstr("request.type"));
  EXPECT_THAT(ConfigError("[request]\ntype = \"integer\"\nmin = 5\nmax = 1\n"), HasSubstr("must not be below min"));
  EXPECT_THAT(ConfigError("service = \"x\"\n"), HasSubstr("[request]"));
  EXPECT_THAT(ConfigError("[request]\ntype = \"map\"\n[request.fields.a]\ntype = \"string\"\nrequird = true\n"),
              HasSubstr("request.fields.a.requird"));
}

TEST(SchemaLoading, EveryShippedSchemaLoads) {
  const std::filesystem::path dir = std::filesystem::path(COURIER_SOURCE_DIR) / "schemas" / "services";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    const PayloadSchema schema = PayloadSchema::LoadFile(entry.path());
    EXPECT_EQ(schema.service(), entry.path().stem().string()) << entry.path();
    ++loaded;
  }
  EXPECT_GE(loaded, 1);
}

}  // namespace
}  // namespace courier::detail
