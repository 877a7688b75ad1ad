#include "courier/value.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include "courier/error.hpp"

namespace courier {
namespace {

// "a map", "an integer": the noun phrase a type error names as what was expected.
[[noreturn]] void ThrowTypeMismatch(std::string_view expected, Value::Type got) {
  // int vs uint is an encoding detail; whoever sent the payload thinks "integer".
  const std::string_view got_name = (got == Value::Type::kInt || got == Value::Type::kUint)
                                        ? std::string_view("integer")
                                        : Value::TypeName(got);
  throw Error(ErrorCode::kInvalidPayload,
              "expected " + std::string(expected) + ", got " + std::string(got_name));
}

}  // namespace

Value::Value(long long v) {
  // One canonical form per number: the decoder yields kUint for every non-negative
  // integer, so a constructed 5 must be kUint too for operator== to agree.
  if (v < 0) {
    data_ = static_cast<std::int64_t>(v);
  } else {
    data_ = static_cast<std::uint64_t>(v);
  }
}

Value Value::Object(std::initializer_list<std::pair<std::string, Value>> fields) {
  Map map;
  map.reserve(fields.size());
  for (const auto& [key, value] : fields) map.emplace_back(Value(key), value);
  return Value(std::move(map));
}

bool Value::AsBool() const {
  if (const bool* v = std::get_if<bool>(&data_)) return *v;
  ThrowTypeMismatch("a bool", type());
}

std::int64_t Value::AsInt() const {
  if (const std::int64_t* v = std::get_if<std::int64_t>(&data_)) return *v;
  if (const std::uint64_t* v = std::get_if<std::uint64_t>(&data_)) {
    if (*v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw Error(ErrorCode::kInvalidPayload,
                  "integer " + std::to_string(*v) + " does not fit in int64");
    }
    return static_cast<std::int64_t>(*v);
  }
  ThrowTypeMismatch("an integer", type());
}

std::uint64_t Value::AsUint() const {
  if (const std::uint64_t* v = std::get_if<std::uint64_t>(&data_)) return *v;
  if (const std::int64_t* v = std::get_if<std::int64_t>(&data_)) {
    // kInt only ever holds negative numbers (see the constructor), but a check on the
    // value itself keeps this correct whatever put it there.
    if (*v < 0) {
      throw Error(ErrorCode::kInvalidPayload,
                  "integer " + std::to_string(*v) + " does not fit in uint64");
    }
    return static_cast<std::uint64_t>(*v);
  }
  ThrowTypeMismatch("an unsigned integer", type());
}

double Value::AsDouble() const {
  if (const double* v = std::get_if<double>(&data_)) return *v;
  if (const std::int64_t* v = std::get_if<std::int64_t>(&data_)) return static_cast<double>(*v);
  if (const std::uint64_t* v = std::get_if<std::uint64_t>(&data_)) {
    return static_cast<double>(*v);
  }
  ThrowTypeMismatch("a number", type());
}

const std::string& Value::AsString() const {
  if (const std::string* v = std::get_if<std::string>(&data_)) return *v;
  ThrowTypeMismatch("a string", type());
}

const Binary& Value::AsBinary() const {
  if (const Binary* v = std::get_if<Binary>(&data_)) return *v;
  ThrowTypeMismatch("a binary", type());
}

const Value::Array& Value::AsArray() const {
  if (const Array* v = std::get_if<Array>(&data_)) return *v;
  ThrowTypeMismatch("an array", type());
}

Value::Array& Value::AsArray() {
  if (Array* v = std::get_if<Array>(&data_)) return *v;
  ThrowTypeMismatch("an array", type());
}

const Value::Map& Value::AsMap() const {
  if (const Map* v = std::get_if<Map>(&data_)) return *v;
  ThrowTypeMismatch("a map", type());
}

Value::Map& Value::AsMap() {
  if (Map* v = std::get_if<Map>(&data_)) return *v;
  ThrowTypeMismatch("a map", type());
}

const Value* Value::Find(std::string_view key) const {
  const Map* map = std::get_if<Map>(&data_);
  if (map == nullptr) return nullptr;
  // Linear: payload maps are small, and a scan keeps insertion order without an index.
  for (const auto& [k, v] : *map) {
    const std::string* text = std::get_if<std::string>(&k.data_);
    if (text != nullptr && *text == key) return &v;
  }
  return nullptr;
}

const Value& Value::At(std::string_view key) const {
  if (!IsMap()) ThrowTypeMismatch("a map", type());
  const Value* value = Find(key);
  if (value == nullptr) {
    throw Error(ErrorCode::kInvalidPayload, "missing key \"" + std::string(key) + "\"");
  }
  return *value;
}

Value& Value::Set(std::string_view key, Value value) {
  if (IsNil()) data_ = Map{};
  Map& map = AsMap();
  for (auto& [k, v] : map) {
    const std::string* text = std::get_if<std::string>(&k.data_);
    if (text != nullptr && *text == key) {
      v = std::move(value);
      return v;
    }
  }
  map.emplace_back(Value(key), std::move(value));
  return map.back().second;
}

Value& Value::Append(Value value) {
  if (IsNil()) data_ = Array{};
  Array& array = AsArray();
  array.push_back(std::move(value));
  return array.back();
}

std::size_t Value::size() const {
  switch (type()) {
    case Type::kString:
      return std::get<std::string>(data_).size();
    case Type::kBinary:
      return std::get<Binary>(data_).bytes.size();
    case Type::kArray:
      return std::get<Array>(data_).size();
    case Type::kMap:
      return std::get<Map>(data_).size();
    default:
      return 0;
  }
}

std::string_view Value::TypeName(Type type) {
  switch (type) {
    case Type::kNil:
      return "nil";
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kUint:
      return "uint";
    case Type::kDouble:
      return "float";
    case Type::kString:
      return "string";
    case Type::kBinary:
      return "binary";
    case Type::kArray:
      return "array";
    case Type::kMap:
      return "map";
  }
  return "unknown";
}

}  // namespace courier
