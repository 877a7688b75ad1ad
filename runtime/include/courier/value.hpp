// courier/value.hpp — a dynamic MessagePack value, for payloads whose shape is not a
// C++ struct (see courier/codec.hpp for MSGPACK_DEFINE structs).
//
// A Value is exactly one of: nil, bool, signed integer, unsigned integer, float64, string
// (UTF-8 text), binary, array, map. Maps keep their insertion order and may have
// non-string keys, so any MessagePack document round-trips unchanged. Non-negative
// integers decode as kUint and negative ones as kInt; accessors convert between the two
// when the value fits.
// Thread-safety: a value type; concurrent reads are safe, writes need exclusive access.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace courier {

struct Binary {
  std::string bytes;
  bool operator==(const Binary&) const = default;
};

class Value {
 public:
  enum class Type { kNil, kBool, kInt, kUint, kDouble, kString, kBinary, kArray, kMap };
  using Array = std::vector<Value>;
  using Map = std::vector<std::pair<Value, Value>>;

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool v) : data_(v) {}
  Value(int v) : Value(static_cast<long long>(v)) {}
  Value(long v) : Value(static_cast<long long>(v)) {}
  Value(long long v);
  Value(unsigned v) : data_(static_cast<std::uint64_t>(v)) {}
  Value(unsigned long v) : data_(static_cast<std::uint64_t>(v)) {}
  Value(unsigned long long v) : data_(static_cast<std::uint64_t>(v)) {}
  Value(double v) : data_(v) {}
  Value(const char* v) : data_(std::string(v)) {}
  Value(std::string v) : data_(std::move(v)) {}
  Value(std::string_view v) : data_(std::string(v)) {}
  Value(Binary v) : data_(std::move(v)) {}
  Value(Array v) : data_(std::move(v)) {}
  Value(Map v) : data_(std::move(v)) {}

  // Returns: a map from string keys, e.g. Value::Object({{"text", "hi"}, {"n", 3}}).
  static Value Object(std::initializer_list<std::pair<std::string, Value>> fields);

  Type type() const { return static_cast<Type>(data_.index()); }
  bool IsNil() const { return type() == Type::kNil; }
  bool IsInteger() const { return type() == Type::kInt || type() == Type::kUint; }
  bool IsNumber() const { return IsInteger() || type() == Type::kDouble; }
  bool IsString() const { return type() == Type::kString; }
  bool IsMap() const { return type() == Type::kMap; }
  bool IsArray() const { return type() == Type::kArray; }

  // Accessors throw Error(kInvalidPayload) when the value has another type or does not fit.
  bool AsBool() const;
  std::int64_t AsInt() const;
  std::uint64_t AsUint() const;
  double AsDouble() const;  // integers convert
  const std::string& AsString() const;
  const Binary& AsBinary() const;
  const Array& AsArray() const;
  Array& AsArray();
  const Map& AsMap() const;
  Map& AsMap();

  // Returns: the value under string key `key` of a map, or nullptr (also when not a map).
  const Value* Find(std::string_view key) const;
  // Returns: the value under `key`. Throws: Error(kInvalidPayload) if absent or not a map.
  const Value& At(std::string_view key) const;
  // Sets `key` in a map (a nil value becomes an empty map first), replacing an old value.
  Value& Set(std::string_view key, Value value);
  // Appends to an array (a nil value becomes an empty array first).
  Value& Append(Value value);
  std::size_t size() const;  // elements of an array or map, bytes of a string/binary

  static std::string_view TypeName(Type type);

  bool operator==(const Value& other) const = default;

 private:
  std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string, Binary,
               Array, Map>
      data_;
};

// Limits applied when decoding untrusted MessagePack; a document past any of them is
// rejected with Error(kBadRequest) before it can allocate.
struct DecodeLimits {
  std::size_t max_bytes = 16 * 1024 * 1024;
  std::size_t max_array = 1 << 20;
  std::size_t max_map = 1 << 20;
  std::size_t max_str = 16 * 1024 * 1024;
  std::size_t max_bin = 16 * 1024 * 1024;
  std::size_t max_ext = 0;
  std::size_t max_depth = 64;
};

// Returns: the MessagePack encoding of `value`.
std::string EncodeValue(const Value& value);
// Returns: the decoded document, which must be exactly one value. Throws: Error(kBadRequest).
Value DecodeValue(std::string_view bytes, const DecodeLimits& limits = {});

// JSON conversion for the CLI and tools. Exact for nil, bools, integers (int64 and uint64),
// floats, strings, arrays and maps with string keys. Binary travels as {"$bin": "<base64>"};
// a map with non-string keys as {"$map": [[key, value], ...]}.
// Throws: Error(kBadRequest) for text that is not JSON.
std::string ToJson(const Value& value, int indent = -1);
Value FromJson(std::string_view json);

// Returns: a map's field as people read it in a table or a page: strings as they are,
// integers in decimal, booleans "yes"/"no", anything else as JSON; "" when the field is
// missing or nil (or `map` is no map).
std::string FieldText(const Value& map, std::string_view key);

}  // namespace courier
