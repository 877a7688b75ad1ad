// JSON form of courier::Value for the CLI and tools. ordered_json keeps map order, so a
// document survives Value -> JSON -> Value unchanged.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "courier/error.hpp"
#include "courier/value.hpp"

namespace courier {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kBinKey = "$bin";
constexpr std::string_view kMapKey = "$map";

// ToJson recurses and a Value's destructor does too; JSON text comes from people and tools,
// so bound its nesting rather than let a "[[[[..." exhaust the native stack.
constexpr std::size_t kMaxJsonDepth = 512;

void InitSodium() {
  // sodium_init is idempotent and thread-safe; the static just avoids calling it per value.
  static const int result = sodium_init();
  if (result < 0) throw Error(ErrorCode::kInternal, "libsodium failed to initialise");
}

std::string EncodeBase64(const std::string& bytes) {
  InitSodium();
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the encoded length counts the terminating NUL
  return out;
}

std::string DecodeBase64(const std::string& text) {
  InitSodium();
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t length = 0;
  // b64_end == nullptr makes any character outside the alphabet (or bad padding) an error.
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    throw Error(ErrorCode::kBadRequest, "invalid JSON value: \"$bin\" is not standard base64");
  }
  out.resize(length);
  return out;
}

// A string-keyed map travels as a JSON object only when that is unambiguous and lossless:
// no duplicate keys (an object would keep one) and not a lone "$bin"/"$map" key (which
// FromJson would read as the escape forms).
bool FitsJsonObject(const Value::Map& map) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(map.size());
  for (const auto& [key, element] : map) {
    if (!key.IsString() || !seen.insert(key.AsString()).second) return false;
  }
  if (map.size() == 1) {
    const std::string& key = map.front().first.AsString();
    if (key == kBinKey || key == kMapKey) return false;
  }
  return true;
}

Json ToJsonValue(const Value& value) {
  switch (value.type()) {
    case Value::Type::kNil:
      return Json(nullptr);
    case Value::Type::kBool:
      return Json(value.AsBool());
    case Value::Type::kInt:
      return Json(value.AsInt());
    case Value::Type::kUint:
      return Json(value.AsUint());
    case Value::Type::kDouble:
      // NaN and infinities have no JSON form; nlohmann writes them as null.
      return Json(value.AsDouble());
    case Value::Type::kString:
      return Json(value.AsString());
    case Value::Type::kBinary: {
      Json object = Json::object();
      object[std::string(kBinKey)] = EncodeBase64(value.AsBinary().bytes);
      return object;
    }
    case Value::Type::kArray: {
      Json array = Json::array();
      for (const Value& element : value.AsArray()) array.push_back(ToJsonValue(element));
      return array;
    }
    case Value::Type::kMap: {
      const Value::Map& map = value.AsMap();
      if (FitsJsonObject(map)) {
        Json object = Json::object();
        // Keys are known distinct, so append to ordered_map's vector directly: its
        // operator[] searches linearly, which would make large maps quadratic.
        auto& fields = static_cast<Json::object_t::Container&>(object.get_ref<Json::object_t&>());
        fields.reserve(map.size());
        for (const auto& [key, element] : map) {
          fields.emplace_back(key.AsString(), ToJsonValue(element));
        }
        return object;
      }
      Json pairs = Json::array();
      for (const auto& [key, element] : map) {
        pairs.push_back(Json::array({ToJsonValue(key), ToJsonValue(element)}));
      }
      Json object = Json::object();
      object[std::string(kMapKey)] = std::move(pairs);
      return object;
    }
  }
  return Json(nullptr);
}

[[noreturn]] void RejectForm(std::string_view why) {
  throw Error(ErrorCode::kBadRequest, "invalid JSON value: " + std::string(why));
}

// Reads the escape forms back; `map` is an object just closed. Returns: whether it was one.
bool ReadEscapeForm(Value::Map& map, Value& out) {
  if (map.size() != 1) return false;
  const std::string& key = map.front().first.AsString();
  Value& inner = map.front().second;
  if (key == kBinKey) {
    if (!inner.IsString()) RejectForm("\"$bin\" must be a base64 string");
    out = Value(Binary{DecodeBase64(inner.AsString())});
    return true;
  }
  if (key == kMapKey) {
    if (!inner.IsArray()) RejectForm("\"$map\" must be an array of [key, value] pairs");
    Value::Map pairs;
    pairs.reserve(inner.size());
    for (Value& pair : inner.AsArray()) {
      if (!pair.IsArray() || pair.size() != 2) {
        RejectForm("\"$map\" must be an array of [key, value] pairs");
      }
      Value::Array& kv = pair.AsArray();
      pairs.emplace_back(std::move(kv[0]), std::move(kv[1]));
    }
    out = Value(std::move(pairs));
    return true;
  }
  return false;
}

// Builds a Value straight from the parser's events: objects keep their order and any
// duplicate keys (a DOM would reorder or merge them, and ordered_json's linear key lookup
// makes large objects quadratic), and nesting lives on a heap stack, not the native one.
class ValueBuilder : public nlohmann::json_sax<Json> {
 public:
  Value Take() { return std::move(root_); }

  bool null() override { return Add(Value()); }
  bool boolean(bool v) override { return Add(Value(v)); }
  bool number_integer(number_integer_t v) override {
    return Add(Value(static_cast<long long>(v)));
  }
  bool number_unsigned(number_unsigned_t v) override {
    return Add(Value(static_cast<unsigned long long>(v)));
  }
  bool number_float(number_float_t v, const string_t& /*text*/) override {
    return Add(Value(static_cast<double>(v)));
  }
  bool string(string_t& v) override { return Add(Value(std::move(v))); }
  bool binary(binary_t& v) override {
    return Add(Value(Binary{std::string(v.begin(), v.end())}));
  }
  bool start_object(std::size_t /*elements*/) override { return Open(Value(Value::Map{})); }
  bool key(string_t& v) override {
    open_.back().key = std::move(v);
    return true;
  }
  bool end_object() override {
    Value closed = std::move(open_.back().container);
    open_.pop_back();
    Value escaped;
    if (ReadEscapeForm(closed.AsMap(), escaped)) return Add(std::move(escaped));
    return Add(std::move(closed));
  }
  bool start_array(std::size_t /*elements*/) override { return Open(Value(Value::Array{})); }
  bool end_array() override {
    Value closed = std::move(open_.back().container);
    open_.pop_back();
    return Add(std::move(closed));
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& e) override {
    // e.what() carries nlohmann's position: "parse error at line 1, column 7: ...".
    throw Error(ErrorCode::kBadRequest, std::string("invalid JSON: ") + e.what());
  }

 private:
  bool Open(Value container) {
    if (open_.size() >= kMaxJsonDepth) {
      throw Error(ErrorCode::kBadRequest,
                  "invalid JSON: nesting deeper than " + std::to_string(kMaxJsonDepth));
    }
    open_.push_back(Frame{std::move(container), {}});
    return true;
  }

  bool Add(Value value) {
    if (open_.empty()) {
      root_ = std::move(value);
    } else if (Frame& frame = open_.back(); frame.container.IsArray()) {
      frame.container.AsArray().push_back(std::move(value));
    } else {
      frame.container.AsMap().emplace_back(Value(std::move(frame.key)), std::move(value));
    }
    return true;
  }

  struct Frame {
    Value container;  // an array or map begun and not yet ended
    std::string key;  // for a map: the key of the member being read
  };

  std::vector<Frame> open_;  // outermost first
  Value root_;
};

}  // namespace

std::string ToJson(const Value& value, int indent) {
  // Payload strings are not guaranteed UTF-8; a CLI printing one should show U+FFFD, not
  // fail the whole document.
  return ToJsonValue(value).dump(indent, ' ', /*ensure_ascii=*/false,
                                 Json::error_handler_t::replace);
}

Value FromJson(std::string_view text) {
  ValueBuilder builder;
  // Strict: trailing non-whitespace after the document is an error too.
  Json::sax_parse(text, &builder, nlohmann::json::input_format_t::json, /*strict=*/true);
  return builder.Take();
}

std::string FieldText(const Value& map, std::string_view key) {
  const Value* field = map.IsMap() ? map.Find(key) : nullptr;
  if (field == nullptr || field->IsNil()) return "";
  if (field->IsString()) return field->AsString();
  if (field->type() == Value::Type::kUint) return std::to_string(field->AsUint());
  if (field->type() == Value::Type::kInt) return std::to_string(field->AsInt());
  if (field->type() == Value::Type::kBool) return field->AsBool() ? "yes" : "no";
  return ToJson(*field);
}

}  // namespace courier
