#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <ostream>
#include <limits>
#include <string>
#include <vector>

#include "courier/codec.hpp"
#include "courier/error.hpp"
#include "courier/value.hpp"

namespace courier {
namespace {

using Type = Value::Type;

}  // namespace

// Lets GoogleTest print a Value as (abridged) JSON instead of raw bytes.
void PrintTo(const Value& value, std::ostream* os) {
  const std::string json = ToJson(value);
  *os << (json.size() > 400 ? json.substr(0, 400) + "..." : json);
}

namespace {

// Runs `fn`, which must throw Error with `code` and a message containing `fragment`.
void ExpectError(const std::function<void()>& fn, ErrorCode code, std::string_view fragment) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string_view(e.what()).find(fragment), std::string_view::npos)
        << "message: " << e.what() << "\nexpected to contain: " << fragment;
    return;
  }
  ADD_FAILURE() << "no courier::Error thrown (expected one containing: " << fragment << ")";
}

std::string Bytes(std::initializer_list<unsigned> bytes) {
  std::string out;
  for (unsigned b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// A document touching every type, nesting, non-string keys and the integer extremes.
Value BigDocument() {
  Value doc = Value::Object({
      {"nil", nullptr},
      {"yes", true},
      {"no", false},
      {"small", 7},
      {"negative", -7},
      {"int64_min", std::numeric_limits<std::int64_t>::min()},
      {"uint64_max", std::numeric_limits<std::uint64_t>::max()},
      {"pi", 3.141592653589793},
      {"text", "héllo ✓ 😀"},
      {"empty", ""},
      {"blob", Binary{std::string("\x00\x01\xfe\xff", 4)}},
  });
  Value::Array numbers;
  for (int i = -5000; i < 5000; ++i) numbers.emplace_back(i * 977);
  doc.Set("numbers", Value(std::move(numbers)));
  Value::Map odd_keys;
  odd_keys.emplace_back(Value(1), Value("one"));
  odd_keys.emplace_back(Value(-1), Value("minus one"));
  odd_keys.emplace_back(Value(Value::Array{Value(1), Value(2)}), Value("a pair"));
  odd_keys.emplace_back(Value(nullptr), Value(true));
  odd_keys.emplace_back(Value(Binary{"k"}), Value(2.5));
  doc.Set("odd_keys", Value(std::move(odd_keys)));
  Value nested;
  Value* level = &nested;
  for (int i = 0; i < 30; ++i) level = &level->Set("child", Value::Object({{"depth", i}}));
  doc.Set("nested", std::move(nested));
  doc.Set("long_string", std::string(100000, 'x'));
  return doc;
}

// In a death-test child: caps the address space at `headroom` past what is mapped now,
// decodes `bytes`, and exits 0 if the decode failed as truncated (2 for another error,
// 3 for success; running out of memory shows as "out of memory" or a crash).
[[noreturn, maybe_unused]] void DecodeUnderAddressSpaceLimit(const std::string& bytes, rlim_t headroom) {
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t current = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE));
  const rlimit limit{current + headroom, current + headroom};
  setrlimit(RLIMIT_AS, &limit);
  try {
    DecodeValue(bytes);
  } catch (const Error& e) {
    std::exit(std::string_view(e.what()).find("truncated") != std::string_view::npos ? 0 : 2);
  }
  std::exit(3);
}

// ---------------------------------------------------------------- construction and access

TEST(Value, ConstructsAndReadsEveryType) {
  EXPECT_EQ(Value().type(), Type::kNil);
  EXPECT_TRUE(Value(nullptr).IsNil());
  EXPECT_EQ(Value(true).type(), Type::kBool);
  EXPECT_TRUE(Value(true).AsBool());
  EXPECT_FALSE(Value(false).AsBool());
  EXPECT_EQ(Value(-3).type(), Type::kInt);
  EXPECT_EQ(Value(-3).AsInt(), -3);
  EXPECT_EQ(Value(-3L).AsInt(), -3);
  EXPECT_EQ(Value(-3LL).AsInt(), -3);
  EXPECT_EQ(Value(3u).type(), Type::kUint);
  EXPECT_EQ(Value(3UL).AsUint(), 3u);
  EXPECT_EQ(Value(3ULL).AsUint(), 3u);
  EXPECT_EQ(Value(2.5).type(), Type::kDouble);
  EXPECT_EQ(Value(2.5).AsDouble(), 2.5);
  EXPECT_EQ(Value("text").AsString(), "text");
  EXPECT_EQ(Value(std::string("text")).AsString(), "text");
  EXPECT_EQ(Value(std::string_view("text")).AsString(), "text");
  EXPECT_TRUE(Value("text").IsString());
  EXPECT_EQ(Value(Binary{"\x01\x02"}).type(), Type::kBinary);
  EXPECT_EQ(Value(Binary{"\x01\x02"}).AsBinary().bytes, "\x01\x02");
  const Value array(Value::Array{Value(1), Value("two")});
  EXPECT_TRUE(array.IsArray());
  EXPECT_EQ(array.AsArray().at(1).AsString(), "two");
  const Value map = Value::Object({{"a", 1}});
  EXPECT_TRUE(map.IsMap());
  EXPECT_EQ(map.AsMap().at(0).first.AsString(), "a");
  EXPECT_TRUE(Value(1).IsInteger());
  EXPECT_TRUE(Value(-1).IsNumber());
  EXPECT_TRUE(Value(1.0).IsNumber());
  EXPECT_FALSE(Value(1.0).IsInteger());
}

TEST(Value, FieldTextShowsAFieldAsPeopleReadIt) {
  const Value row = Value::Object({{"name", "echo"},
                                   {"count", 7},
                                   {"delta", -3},
                                   {"up", true},
                                   {"tags", Value(Value::Array{"a", "b"})},
                                   {"gone", Value()}});
  EXPECT_EQ(FieldText(row, "name"), "echo");
  EXPECT_EQ(FieldText(row, "count"), "7");
  EXPECT_EQ(FieldText(row, "delta"), "-3");
  EXPECT_EQ(FieldText(row, "up"), "yes");
  EXPECT_EQ(FieldText(row, "tags"), R"(["a","b"])");
  EXPECT_EQ(FieldText(row, "gone"), "");
  EXPECT_EQ(FieldText(row, "missing"), "");
  EXPECT_EQ(FieldText(Value("not a map"), "name"), "");
}

TEST(Value, NonNegativeIntegersAreCanonicallyUnsigned) {
  EXPECT_EQ(Value(0).type(), Type::kUint);
  EXPECT_EQ(Value(5).type(), Type::kUint);
  EXPECT_EQ(Value(5LL).type(), Type::kUint);
  EXPECT_EQ(Value(5), Value(5u));
  EXPECT_EQ(Value(-5).type(), Type::kInt);
  EXPECT_EQ(DecodeValue(EncodeValue(Value(5))), Value(5));
  EXPECT_EQ(DecodeValue(EncodeValue(Value(-5))), Value(-5));
}

TEST(Value, IntegerConversionsAndRange) {
  EXPECT_EQ(Value(5u).AsInt(), 5);
  EXPECT_EQ(Value(std::numeric_limits<std::int64_t>::max()).AsUint(),
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
  EXPECT_EQ(Value(std::numeric_limits<std::int64_t>::min()).AsInt(),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(Value(std::numeric_limits<std::uint64_t>::max()).AsUint(),
            std::numeric_limits<std::uint64_t>::max());
  ExpectError([] { Value(std::numeric_limits<std::uint64_t>::max()).AsInt(); },
              ErrorCode::kInvalidPayload, "18446744073709551615 does not fit in int64");
  ExpectError([] { Value(-1).AsUint(); }, ErrorCode::kInvalidPayload,
              "-1 does not fit in uint64");
  EXPECT_EQ(Value(-4).AsDouble(), -4.0);
  EXPECT_EQ(Value(4u).AsDouble(), 4.0);
  ExpectError([] { Value(1.0).AsInt(); }, ErrorCode::kInvalidPayload,
              "expected an integer, got float");
}

TEST(Value, AccessorsRejectOtherTypes) {
  ExpectError([] { Value("x").AsInt(); }, ErrorCode::kInvalidPayload,
              "expected an integer, got string");
  ExpectError([] { Value(1).AsString(); }, ErrorCode::kInvalidPayload,
              "expected a string, got integer");
  ExpectError([] { Value(-1).AsBool(); }, ErrorCode::kInvalidPayload,
              "expected a bool, got integer");
  ExpectError([] { Value().AsDouble(); }, ErrorCode::kInvalidPayload,
              "expected a number, got nil");
  ExpectError([] { Value(true).AsUint(); }, ErrorCode::kInvalidPayload, "got bool");
  ExpectError([] { Value("x").AsBinary(); }, ErrorCode::kInvalidPayload,
              "expected a binary, got string");
  ExpectError([] { Value(Binary{}).AsArray(); }, ErrorCode::kInvalidPayload,
              "expected an array, got binary");
  ExpectError([] { Value(Value::Array{}).AsMap(); }, ErrorCode::kInvalidPayload,
              "expected a map, got array");
  Value mutable_value(Value::Map{});
  ExpectError([&] { mutable_value.AsArray(); }, ErrorCode::kInvalidPayload, "got map");
  ExpectError([&] { Value(1.5).AsMap(); }, ErrorCode::kInvalidPayload, "got float");
}

TEST(Value, TypeNames) {
  EXPECT_EQ(Value::TypeName(Type::kNil), "nil");
  EXPECT_EQ(Value::TypeName(Type::kBool), "bool");
  EXPECT_EQ(Value::TypeName(Type::kInt), "int");
  EXPECT_EQ(Value::TypeName(Type::kUint), "uint");
  EXPECT_EQ(Value::TypeName(Type::kDouble), "float");
  EXPECT_EQ(Value::TypeName(Type::kString), "string");
  EXPECT_EQ(Value::TypeName(Type::kBinary), "binary");
  EXPECT_EQ(Value::TypeName(Type::kArray), "array");
  EXPECT_EQ(Value::TypeName(Type::kMap), "map");
}

TEST(Value, MapKeepsOrderAndNonStringKeys) {
  Value map = Value::Object({{"zeta", 1}, {"alpha", 2}});
  map.Set("mid", 3);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map.AsMap()[0].first.AsString(), "zeta");
  EXPECT_EQ(map.AsMap()[1].first.AsString(), "alpha");
  EXPECT_EQ(map.AsMap()[2].first.AsString(), "mid");

  // Replacing keeps the key's position.
  map.Set("zeta", "replaced");
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(map.AsMap()[0].second.AsString(), "replaced");

  map.AsMap().emplace_back(Value(42), Value("answer"));
  EXPECT_EQ(map.Find("42"), nullptr);  // an integer key is not the string "42"
  EXPECT_EQ(map.AsMap().back().first.AsUint(), 42u);
  EXPECT_EQ(DecodeValue(EncodeValue(map)), map);
}

TEST(Value, FindAtSetAppendSize) {
  Value map;
  map.Set("a", Value()).Set("inner", "x");  // Set returns the stored value; nil becomes a map
  EXPECT_EQ(map.At("a").At("inner").AsString(), "x");
  ASSERT_NE(map.Find("a"), nullptr);
  EXPECT_EQ(map.Find("missing"), nullptr);
  EXPECT_EQ(Value(1).Find("a"), nullptr);
  ExpectError([&] { map.At("missing"); }, ErrorCode::kInvalidPayload, "missing");
  ExpectError([] { Value(1).At("a"); }, ErrorCode::kInvalidPayload, "expected a map");

  Value array;
  array.Append(1);
  array.Append("two").AsString();
  EXPECT_EQ(array, Value(Value::Array{Value(1), Value("two")}));
  ExpectError([&] { array.Set("k", 1); }, ErrorCode::kInvalidPayload, "expected a map");
  ExpectError([&] { map.Append(1); }, ErrorCode::kInvalidPayload, "expected an array");

  EXPECT_EQ(array.size(), 2u);
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(Value("héllo").size(), 6u);  // bytes, not characters
  EXPECT_EQ(Value(Binary{"abc"}).size(), 3u);
  EXPECT_EQ(Value(7).size(), 0u);
  EXPECT_EQ(Value().size(), 0u);
}

TEST(Value, Equality) {
  EXPECT_EQ(Value::Object({{"a", 1}}), Value::Object({{"a", 1u}}));
  EXPECT_NE(Value::Object({{"a", 1}, {"b", 2}}), Value::Object({{"b", 2}, {"a", 1}}));
  EXPECT_NE(Value(1), Value(1.0));
  EXPECT_NE(Value("a"), Value(Binary{"a"}));
}

// ---------------------------------------------------------------- MessagePack

TEST(ValueCodec, EncodesCompactly) {
  EXPECT_EQ(EncodeValue(Value()), Bytes({0xc0}));
  EXPECT_EQ(EncodeValue(Value(true)), Bytes({0xc3}));
  EXPECT_EQ(EncodeValue(Value(1)), Bytes({0x01}));
  EXPECT_EQ(EncodeValue(Value(-1)), Bytes({0xff}));
  EXPECT_EQ(EncodeValue(Value(300)), Bytes({0xcd, 0x01, 0x2c}));
  EXPECT_EQ(EncodeValue(Value(1.5)), Bytes({0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(EncodeValue(Value("a")), Bytes({0xa1, 'a'}));
  EXPECT_EQ(EncodeValue(Value(Binary{"a"})), Bytes({0xc4, 0x01, 'a'}));
  EXPECT_EQ(EncodeValue(Value::Object({{"k", Value::Array{Value(1)}}})),
            Bytes({0x81, 0xa1, 'k', 0x91, 0x01}));
}

TEST(ValueCodec, RoundTripsBigNestedDocument) {
  const Value doc = BigDocument();
  const std::string bytes = EncodeValue(doc);
  const Value decoded = DecodeValue(bytes);
  EXPECT_EQ(decoded, doc);
  EXPECT_EQ(decoded.At("int64_min").type(), Type::kInt);
  EXPECT_EQ(decoded.At("uint64_max").AsUint(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(decoded.At("numbers").size(), 10000u);
  EXPECT_EQ(EncodeValue(decoded), bytes);
}

TEST(ValueCodec, DecodesForeignEncodings) {
  // float32 widens to double; a negative-format integer holding a non-negative value
  // (0xd0 0x05 is int8 5) is kUint like any other non-negative number.
  EXPECT_EQ(DecodeValue(Bytes({0xca, 0x3f, 0xc0, 0, 0})), Value(1.5));
  EXPECT_EQ(DecodeValue(Bytes({0xd0, 0x05})), Value(5));
  EXPECT_EQ(DecodeValue(Bytes({0xd0, 0x05})).type(), Type::kUint);
  EXPECT_EQ(DecodeValue(Bytes({0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0})),
            Value(std::numeric_limits<std::int64_t>::min()));
  // str8 / bin8 / array16 / map16 forms.
  EXPECT_EQ(DecodeValue(Bytes({0xd9, 0x01, 'z'})), Value("z"));
  EXPECT_EQ(DecodeValue(Bytes({0xc5, 0x00, 0x01, 'z'})), Value(Binary{"z"}));
  EXPECT_EQ(DecodeValue(Bytes({0xdc, 0x00, 0x01, 0xc2})), Value(Value::Array{Value(false)}));
  EXPECT_EQ(DecodeValue(Bytes({0xde, 0x00, 0x01, 0x01, 0x02})).AsMap().at(0).second, Value(2));
}

TEST(ValueCodec, RejectsEveryTruncation) {
  const std::string bytes = EncodeValue(BigDocument());
  // Every proper prefix is a truncated document; test a spread of them, plus the short ones.
  for (std::size_t length = 0; length < bytes.size(); length += (length < 64 ? 1 : 997)) {
    ExpectError([&] { DecodeValue(std::string_view(bytes).substr(0, length)); },
                ErrorCode::kBadRequest, length == 0 ? "empty" : "truncated");
  }
}

TEST(ValueCodec, RejectsTrailingBytes) {
  ExpectError([] { DecodeValue(Bytes({0x01, 0x02})); }, ErrorCode::kBadRequest,
              "1 trailing bytes");
  ExpectError([] { DecodeValue(EncodeValue(BigDocument()) + "xyz"); }, ErrorCode::kBadRequest,
              "3 trailing bytes");
}

TEST(ValueCodec, RejectsInvalidTypeByte) {
  ExpectError([] { DecodeValue(Bytes({0xc1})); }, ErrorCode::kBadRequest, "invalid type byte");
  ExpectError([] { DecodeValue(Bytes({0x92, 0x01, 0xc1})); }, ErrorCode::kBadRequest,
              "invalid type byte at offset 2");
}

TEST(ValueCodec, RejectsInputOverMaxBytes) {
  DecodeLimits limits;
  limits.max_bytes = 10;
  EXPECT_EQ(DecodeValue(EncodeValue(Value("123456789")), limits), Value("123456789"));
  ExpectError([&] { DecodeValue(EncodeValue(Value("1234567890")), limits); },
              ErrorCode::kBadRequest, "11 bytes exceeds the limit of 10");
}

TEST(ValueCodec, RejectsForgedArrayLengthWithoutAllocating) {
  // array32 claiming 4294967295 elements in 5 bytes.
  ExpectError([] { DecodeValue(Bytes({0xdd, 0xff, 0xff, 0xff, 0xff})); },
              ErrorCode::kBadRequest, "array of 4294967295 elements exceeds the limit");
  ExpectError([] { DecodeValue(Bytes({0xdf, 0xff, 0xff, 0xff, 0xff})); },
              ErrorCode::kBadRequest, "map of 4294967295 entries exceeds the limit");
  // Under the count limit but unbacked by the input: truncation, found before allocation.
  ExpectError([] { DecodeValue(Bytes({0xdd, 0x00, 0x0f, 0xff, 0xff, 0x01})); },
              ErrorCode::kBadRequest, "truncated");
}

TEST(ValueCodec, NestedForgedLengthsDoNotReserveMemory) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "address-space limits and AddressSanitizer do not mix";
#else
  // 60 nested array32 headers each claiming 2^20-1 elements: 300 bytes, all within the
  // default limits. Allocating as headers are read would take 60 x 16 MiB; the child
  // process gets far less address space than that, so only a decoder that checks the
  // input backs every element first can answer "truncated" rather than running out.
  std::string forged;
  for (int i = 0; i < 60; ++i) forged += Bytes({0xdd, 0x00, 0x0f, 0xff, 0xff});
  EXPECT_EXIT(DecodeUnderAddressSpaceLimit(forged, 512u << 20),
      ::testing::ExitedWithCode(0), "");
#endif
}

TEST(ValueCodec, RejectsStringBinaryAndMapOverLimits) {
  DecodeLimits limits;
  limits.max_str = 4;
  limits.max_bin = 4;
  limits.max_map = 1;
  EXPECT_EQ(DecodeValue(EncodeValue(Value("1234")), limits), Value("1234"));
  ExpectError([&] { DecodeValue(EncodeValue(Value("12345")), limits); },
              ErrorCode::kBadRequest, "string of 5 bytes exceeds the limit of 4");
  // A forged str32 length: the body must be present before the string is seen at all.
  ExpectError([] { DecodeValue(Bytes({0xdb, 0xff, 0xff, 0xff, 0xff, 'a'})); },
              ErrorCode::kBadRequest, "truncated");
  ExpectError([&] { DecodeValue(EncodeValue(Value(Binary{"12345"})), limits); },
              ErrorCode::kBadRequest, "binary of 5 bytes exceeds the limit of 4");
  ExpectError([&] { DecodeValue(EncodeValue(Value::Object({{"a", 1}, {"b", 2}})), limits); },
              ErrorCode::kBadRequest, "map of 2 entries exceeds the limit of 1");
  limits.max_array = 2;
  ExpectError([&] { DecodeValue(EncodeValue(Value(Value::Array{1, 2, 3})), limits); },
              ErrorCode::kBadRequest, "array of 3 elements exceeds the limit of 2");
}

TEST(ValueCodec, RejectsDepthOverLimit) {
  auto nested = [](int depth) {
    Value value;
    for (int i = 0; i < depth; ++i) value = Value(Value::Array{std::move(value)});
    return EncodeValue(value);
  };
  EXPECT_NO_THROW(DecodeValue(nested(64)));  // the default max_depth is inclusive
  ExpectError([&] { DecodeValue(nested(65)); }, ErrorCode::kBadRequest,
              "nesting deeper than the limit of 64");
  ExpectError([&] { DecodeValue(nested(200)); }, ErrorCode::kBadRequest, "nesting deeper");
  // Empty containers count too: 200 x fixarray(1) ending in an empty array.
  std::string bytes(199, static_cast<char>(0x91));
  bytes.push_back(static_cast<char>(0x90));
  ExpectError([&] { DecodeValue(bytes); }, ErrorCode::kBadRequest, "nesting deeper");
  DecodeLimits shallow;
  shallow.max_depth = 1;
  EXPECT_NO_THROW(DecodeValue(Bytes({0x91, 0x01}), shallow));
  ExpectError([&] { DecodeValue(Bytes({0x81, 0x01, 0x90}), shallow); },
              ErrorCode::kBadRequest, "nesting deeper than the limit of 1");
}

TEST(ValueCodec, RejectsExtensionTypes) {
  // fixext1, type 1, one data byte; also inside an array.
  ExpectError([] { DecodeValue(Bytes({0xd4, 0x01, 0x00})); }, ErrorCode::kBadRequest,
              "extension types are not supported");
  ExpectError([] { DecodeValue(Bytes({0x91, 0xd4, 0x01, 0x00})); }, ErrorCode::kBadRequest,
              "extension types are not supported");
  // Even when the limits admit extensions, a Value cannot hold one.
  DecodeLimits limits;
  limits.max_ext = 16;
  ExpectError([&] { DecodeValue(Bytes({0xd4, 0x01, 0x00}), limits); },
              ErrorCode::kBadRequest, "extension types are not supported");
  ExpectError([&] { DecodeValue(Bytes({0xc7, 0x20, 0x01}) + std::string(32, 'e'), limits); },
              ErrorCode::kBadRequest, "extension of 33 bytes exceeds the limit of 16");
}

// ---------------------------------------------------------------- JSON

void ExpectJsonRoundTrip(const Value& value) {
  EXPECT_EQ(FromJson(ToJson(value)), value);
  EXPECT_EQ(FromJson(ToJson(value, 2)), value);
}

TEST(Json, WritesEveryType) {
  EXPECT_EQ(ToJson(Value()), "null");
  EXPECT_EQ(ToJson(Value(true)), "true");
  EXPECT_EQ(ToJson(Value(-12)), "-12");
  EXPECT_EQ(ToJson(Value(std::numeric_limits<std::uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(ToJson(Value(std::numeric_limits<std::int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(ToJson(Value(0.1)), "0.1");
  EXPECT_EQ(ToJson(Value(3.0)), "3.0");
  EXPECT_EQ(ToJson(Value("a\"b\n")), R"("a\"b\n")");
  EXPECT_EQ(ToJson(Value("✓")), "\"✓\"");
  EXPECT_EQ(ToJson(Value(Binary{std::string("\x00\x01\x02\xff", 4)})), R"({"$bin":"AAEC/w=="})");
  EXPECT_EQ(ToJson(Value::Object({{"z", 1}, {"a", Value::Array{Value(), Value(false)}}})),
            R"({"z":1,"a":[null,false]})");
  EXPECT_EQ(ToJson(Value::Object({{"a", 1}}), 2), "{\n  \"a\": 1\n}");
}

TEST(Json, RoundTripsEveryType) {
  ExpectJsonRoundTrip(Value());
  ExpectJsonRoundTrip(Value(true));
  ExpectJsonRoundTrip(Value(false));
  ExpectJsonRoundTrip(Value(0));
  ExpectJsonRoundTrip(Value(-1));
  ExpectJsonRoundTrip(Value(std::numeric_limits<std::uint64_t>::max()));
  ExpectJsonRoundTrip(Value(std::numeric_limits<std::int64_t>::min()));
  ExpectJsonRoundTrip(Value(std::numeric_limits<std::int64_t>::max()));
  ExpectJsonRoundTrip(Value(1e300));
  ExpectJsonRoundTrip(Value(-1e-300));
  ExpectJsonRoundTrip(Value(0.1));
  ExpectJsonRoundTrip(Value(std::numeric_limits<double>::max()));
  ExpectJsonRoundTrip(Value(std::numeric_limits<double>::denorm_min()));
  ExpectJsonRoundTrip(Value(3.0));  // stays a float, not an integer
  ExpectJsonRoundTrip(Value(""));
  ExpectJsonRoundTrip(Value("héllo ✓ 😀 \u0001 \\ \""));
  ExpectJsonRoundTrip(Value(Binary{}));
  ExpectJsonRoundTrip(Value(Binary{std::string("\x00\xff\x10", 3)}));
  ExpectJsonRoundTrip(Value(Value::Array{}));
  ExpectJsonRoundTrip(Value(Value::Map{}));
  ExpectJsonRoundTrip(BigDocument());
}

TEST(Json, NegativeZeroKeepsItsSign) {
  const Value back = FromJson(ToJson(Value(-0.0)));
  ASSERT_EQ(back.type(), Type::kDouble);
  EXPECT_TRUE(std::signbit(back.AsDouble()));
}

TEST(Json, NumbersKeepTheirKind) {
  EXPECT_EQ(FromJson("5").type(), Type::kUint);
  EXPECT_EQ(FromJson("-5").type(), Type::kInt);
  EXPECT_EQ(FromJson("5.0").type(), Type::kDouble);
  EXPECT_EQ(FromJson("1e2").type(), Type::kDouble);
  EXPECT_EQ(FromJson("18446744073709551615").AsUint(), std::numeric_limits<std::uint64_t>::max());
  // Past uint64 JSON has no integer; nlohmann reads it as a float.
  EXPECT_EQ(FromJson("18446744073709551616").type(), Type::kDouble);
}

TEST(Json, NonStringKeysUseMapForm) {
  Value::Map map;
  map.emplace_back(Value(1), Value("one"));
  map.emplace_back(Value("two"), Value(2));
  const Value value(std::move(map));
  EXPECT_EQ(ToJson(value), R"({"$map":[[1,"one"],["two",2]]})");
  ExpectJsonRoundTrip(value);
}

TEST(Json, AmbiguousStringMapsUseMapForm) {
  // Duplicate keys would collapse in a JSON object; a lone "$bin" or "$map" key would be
  // read back as the escape form.
  Value::Map duplicates;
  duplicates.emplace_back(Value("k"), Value(1));
  duplicates.emplace_back(Value("k"), Value(2));
  ExpectJsonRoundTrip(Value(std::move(duplicates)));
  ExpectJsonRoundTrip(Value::Object({{"$bin", "not base64!"}}));
  ExpectJsonRoundTrip(Value::Object({{"$map", 1}}));
  EXPECT_EQ(ToJson(Value::Object({{"$bin", "x"}})), R"({"$map":[["$bin","x"]]})");
  // With other keys beside them they are ordinary.
  const Value ordinary = Value::Object({{"$bin", "x"}, {"y", 1}});
  EXPECT_EQ(ToJson(ordinary), R"({"$bin":"x","y":1})");
  ExpectJsonRoundTrip(ordinary);
}

TEST(Json, ReadsObjectsInOrderWithDuplicates) {
  const Value value = FromJson(R"({"b": 1, "a": 2, "b": 3})");
  ASSERT_EQ(value.size(), 3u);
  EXPECT_EQ(value.AsMap()[0].first.AsString(), "b");
  EXPECT_EQ(value.AsMap()[1].first.AsString(), "a");
  EXPECT_EQ(value.AsMap()[2].second, Value(3));
}

TEST(Json, ReadsNestedObjectsUnderTheirOwnKeys) {
  const Value value = FromJson(R"({"a": {"b": {"$bin": "AA=="}, "c": [{"d": 1}]}, "e": 2})");
  EXPECT_EQ(value, Value::Object({
                       {"a", Value::Object({{"b", Binary{std::string(1, '\0')}},
                                            {"c", Value::Array{Value::Object({{"d", 1}})}}})},
                       {"e", 2},
                   }));
}

TEST(Json, RejectsMalformedEscapeForms) {
  ExpectError([] { FromJson(R"({"$bin": 5})"); }, ErrorCode::kBadRequest, "base64 string");
  ExpectError([] { FromJson(R"({"$bin": "@@@"})"); }, ErrorCode::kBadRequest, "base64");
  ExpectError([] { FromJson(R"({"$bin": "AAE"})"); }, ErrorCode::kBadRequest, "base64");
  ExpectError([] { FromJson(R"({"$map": {}})"); }, ErrorCode::kBadRequest, "[key, value]");
  ExpectError([] { FromJson(R"({"$map": [[1]]})"); }, ErrorCode::kBadRequest, "[key, value]");
  ExpectError([] { FromJson(R"({"$map": [5]})"); }, ErrorCode::kBadRequest, "[key, value]");
  EXPECT_EQ(FromJson(R"({"$map": []})"), Value(Value::Map{}));
}

TEST(Json, InvalidUtf8IsReplacedNotThrown) {
  const std::string json = ToJson(Value(std::string("ok\xff")));
  EXPECT_EQ(json, "\"ok\xEF\xBF\xBD\"");  // U+FFFD
}

TEST(Json, NonFiniteFloatsBecomeNull) {
  EXPECT_EQ(ToJson(Value(std::numeric_limits<double>::quiet_NaN())), "null");
  EXPECT_EQ(ToJson(Value(std::numeric_limits<double>::infinity())), "null");
}

TEST(Json, RejectsInvalidJson) {
  ExpectError([] { FromJson(""); }, ErrorCode::kBadRequest, "invalid JSON");
  ExpectError([] { FromJson("{\"a\": }"); }, ErrorCode::kBadRequest, "line 1, column 7");
  ExpectError([] { FromJson("[1, 2"); }, ErrorCode::kBadRequest, "invalid JSON");
  ExpectError([] { FromJson("[1] [2]"); }, ErrorCode::kBadRequest, "invalid JSON");
  ExpectError([] { FromJson("{'a': 1}"); }, ErrorCode::kBadRequest, "invalid JSON");
  ExpectError([] { FromJson("\"\xff\""); }, ErrorCode::kBadRequest, "invalid JSON");
  ExpectError([] { FromJson("nul"); }, ErrorCode::kBadRequest, "invalid JSON");
  EXPECT_EQ(FromJson("  [1]\n"), Value(Value::Array{Value(1)}));
}

TEST(Json, RejectsDeepNesting) {
  EXPECT_NO_THROW(FromJson(std::string(512, '[') + std::string(512, ']')));
  ExpectError([] { FromJson(std::string(100000, '[') + std::string(100000, ']')); },
              ErrorCode::kBadRequest, "nesting deeper");
}

// ---------------------------------------------------------------- typed payloads

struct Resize {
  std::string path;
  std::uint32_t width = 0;
  std::vector<std::string> tags;
  MSGPACK_DEFINE(path, width, tags);
  bool operator==(const Resize&) const = default;
};

struct Named {
  std::string name;
  std::int64_t delta = 0;
  MSGPACK_DEFINE_MAP(name, delta);
};

TEST(Codec, EncodesAndDecodesStructs) {
  const Resize job{"a.png", 640, {"thumb", "fast"}};
  const std::string bytes = Encode(job);
  EXPECT_EQ(Decode<Resize>(bytes), job);
  // The struct's encoding is the positional array a Value sees.
  EXPECT_EQ(DecodeValue(bytes),
            Value(Value::Array{Value("a.png"), Value(640),
                               Value(Value::Array{Value("thumb"), Value("fast")})}));
}

TEST(Codec, MismatchIsInvalidPayload) {
  ExpectError([] { Decode<Resize>(EncodeValue(Value("just a string"))); },
              ErrorCode::kInvalidPayload, "payload does not match the expected type");
  ExpectError([] { Decode<Resize>(EncodeValue(Value(Value::Array{Value(1), Value(2)}))); },
              ErrorCode::kInvalidPayload, "does not match");
  // A width that does not fit in uint32.
  ExpectError(
      [] { Decode<Resize>(EncodeValue(Value(Value::Array{Value("p"), Value(1ULL << 40)}))); },
      ErrorCode::kInvalidPayload, "does not match");
}

TEST(Codec, MalformedBytesAreBadRequest) {
  const std::string bytes = Encode(Resize{"a.png", 640, {}});
  ExpectError([&] { Decode<Resize>(bytes.substr(0, bytes.size() - 1)); },
              ErrorCode::kBadRequest, "truncated");
  ExpectError([&] { Decode<Resize>(bytes + "x"); }, ErrorCode::kBadRequest, "trailing");
  DecodeLimits limits;
  limits.max_str = 2;
  ExpectError([&] { Decode<Resize>(bytes, limits); }, ErrorCode::kBadRequest,
              "string of 5 bytes");
  ExpectError([] { Decode<Resize>(Bytes({0xdd, 0xff, 0xff, 0xff, 0xff})); },
              ErrorCode::kBadRequest, "array of 4294967295 elements");
}

TEST(Codec, ConvertsToAndFromValue) {
  const Resize job{"b.png", 1, {"x"}};
  const Value value = ToValue(job);
  EXPECT_EQ(value.AsArray().at(0).AsString(), "b.png");
  EXPECT_EQ(FromValue<Resize>(value), job);

  const Value named = ToValue(Named{"n", -3});
  EXPECT_EQ(named, Value::Object({{"name", "n"}, {"delta", -3}}));
  const Named back = FromValue<Named>(Value::Object({{"delta", 9}, {"name", "m"}}));
  EXPECT_EQ(back.name, "m");
  EXPECT_EQ(back.delta, 9);

  ExpectError([] { FromValue<Resize>(Value(1.5)); }, ErrorCode::kInvalidPayload,
              "does not match");
  EXPECT_EQ(FromValue<std::vector<int>>(Value(Value::Array{Value(-1), Value(2)})),
            (std::vector<int>{-1, 2}));
}

}  // namespace
}  // namespace courier
