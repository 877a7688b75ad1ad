#include "payload_schema.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "courier/error.hpp"

namespace courier::detail {
namespace {

using Kind = SchemaNode::Kind;

struct KindName {
  std::string_view name;
  Kind kind;
  std::string_view noun;  // for messages: "expected an integer"
};

constexpr KindName kKinds[] = {
    {"any", Kind::kAny, "any value"},       {"nil", Kind::kNil, "nil"},
    {"bool", Kind::kBool, "a boolean"},     {"integer", Kind::kInteger, "an integer"},
    {"float", Kind::kFloat, "a float"},     {"number", Kind::kNumber, "a number"},
    {"string", Kind::kString, "a string"},  {"binary", Kind::kBinary, "binary data"},
    {"array", Kind::kArray, "an array"},    {"map", Kind::kMap, "a map"},
};

std::string_view Noun(Kind kind) {
  for (const KindName& k : kKinds) {
    if (k.kind == kind) return k.noun;
  }
  return "a value";
}

std::string_view Got(const Value& value) {
  switch (value.type()) {
    case Value::Type::kNil: return "nil";
    case Value::Type::kBool: return "a boolean";
    case Value::Type::kInt:
    case Value::Type::kUint: return "an integer";
    case Value::Type::kDouble: return "a float";
    case Value::Type::kString: return "a string";
    case Value::Type::kBinary: return "binary data";
    case Value::Type::kArray: return "an array";
    case Value::Type::kMap: return "a map";
  }
  return "a value";
}

std::string FormatDouble(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  // Shortest form that still reads back the same, e.g. 1.5 rather than 1.5000000000000000.
  for (int precision = 1; precision <= 17; ++precision) {
    char shorter[64];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, value);
    if (std::strtod(shorter, nullptr) == value) return shorter;
  }
  return buffer;
}

std::string Range(const auto& min, const auto& max) {
  auto text = [](const auto& v) {
    if constexpr (std::is_same_v<std::decay_t<decltype(*v)>, double>) {
      return FormatDouble(*v);
    } else {
      return std::to_string(*v);
    }
  };
  if (min && max) return "in [" + text(min) + ", " + text(max) + "]";
  if (min) return ">= " + text(min);
  return "<= " + text(max);
}

std::string Limit(const std::optional<std::uint64_t>& min, const std::optional<std::uint64_t>& max,
                  std::string_view unit) {
  std::string text;
  if (min && max && *min == *max) return "exactly " + std::to_string(*min) + " " + std::string(unit);
  if (min && max) return std::to_string(*min) + ".." + std::to_string(*max) + " " + std::string(unit);
  if (min) return "at least " + std::to_string(*min) + " " + std::string(unit);
  return "at most " + std::to_string(*max) + " " + std::string(unit);
}

std::string Preview(const std::string& text) {
  constexpr std::size_t kMax = 40;
  if (text.size() <= kMax) return "\"" + text + "\"";
  return "\"" + text.substr(0, kMax) + "...\"";
}

}  // namespace

void SchemaNode::Fail(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kInvalidPayload, path + ": " + what);
}

SchemaNode SchemaNode::Read(const ConfigSection& table, bool in_fields) {
  SchemaNode node;
  const std::string type = table.GetEnum(
      "type", "any",
      {"any", "nil", "bool", "integer", "float", "number", "string", "binary", "array", "map"});
  for (const KindName& k : kKinds) {
    if (k.name == type) node.kind_ = k.kind;
  }
  (void)table.GetOptionalString("description");
  if (in_fields) node.required_ = table.GetBool("required", false);
  node.nullable_ = table.GetBool("nullable", false);

  const auto reject = [&](std::string_view key, std::string_view applies_to) {
    if (table.Has(key)) {
      throw Error(ErrorCode::kConfig,
                  table.Describe(key, "applies to " + std::string(applies_to) + " only, not to type \"" +
                                          type + "\""));
    }
  };
  const bool numeric = node.kind_ == Kind::kInteger || node.kind_ == Kind::kFloat || node.kind_ == Kind::kNumber;
  const bool sized = node.kind_ == Kind::kString || node.kind_ == Kind::kBinary;
  const bool container = node.kind_ == Kind::kArray || node.kind_ == Kind::kMap;

  if (node.kind_ == Kind::kInteger) {
    constexpr auto kLow = std::numeric_limits<std::int64_t>::min();
    constexpr auto kHigh = std::numeric_limits<std::int64_t>::max();
    if (table.Has("min")) node.int_min_ = table.GetInt("min", 0, kLow, kHigh);
    if (table.Has("max")) node.int_max_ = table.GetInt("max", 0, kLow, kHigh);
    if (node.int_min_ && node.int_max_ && *node.int_min_ > *node.int_max_) {
      throw Error(ErrorCode::kConfig, table.Describe("max", "must not be below min"));
    }
  } else if (numeric) {
    constexpr double kInf = std::numeric_limits<double>::infinity();
    if (table.Has("min")) node.float_min_ = table.GetDouble("min", 0, -kInf, kInf);
    if (table.Has("max")) node.float_max_ = table.GetDouble("max", 0, -kInf, kInf);
    if (node.float_min_ && node.float_max_ && *node.float_min_ > *node.float_max_) {
      throw Error(ErrorCode::kConfig, table.Describe("max", "must not be below min"));
    }
  } else {
    reject("min", "integer, float and number");
    reject("max", "integer, float and number");
  }

  constexpr std::int64_t kMaxSize = std::numeric_limits<std::uint32_t>::max();
  if (sized) {
    if (table.Has("min_length")) node.min_length_ = table.GetInt("min_length", 0, 0, kMaxSize);
    if (table.Has("max_length")) node.max_length_ = table.GetInt("max_length", 0, 0, kMaxSize);
  } else {
    reject("min_length", "string and binary");
    reject("max_length", "string and binary");
  }
  if (container) {
    if (table.Has("min_items")) node.min_length_ = table.GetInt("min_items", 0, 0, kMaxSize);
    if (table.Has("max_items")) node.max_length_ = table.GetInt("max_items", 0, 0, kMaxSize);
  } else {
    reject("min_items", "array and map");
    reject("max_items", "array and map");
  }
  if (node.min_length_ && node.max_length_ && *node.min_length_ > *node.max_length_) {
    throw Error(ErrorCode::kConfig, table.Describe(sized ? "max_length" : "max_items", "must not be below the minimum"));
  }

  if (node.kind_ == Kind::kString) {
    node.enum_ = table.GetStringArray("enum", {});
  } else {
    reject("enum", "string");
  }

  if (node.kind_ == Kind::kArray) {
    if (table.Has("items")) node.items_ = std::make_shared<SchemaNode>(Read(table.Section("items"), false));
  } else {
    reject("items", "array");
  }

  if (node.kind_ == Kind::kMap) {
    if (table.Has("fields")) {
      const ConfigSection fields = table.Section("fields");
      for (const std::string& name : fields.Keys()) {
        node.fields_.emplace_back(name, Read(fields.Section(name), true));
      }
    }
    if (table.Has("values")) {
      node.values_ = std::make_shared<SchemaNode>(Read(table.Section("values"), false));
    }
    node.additional_fields_ = table.GetBool("additional_fields", true);
  } else {
    reject("fields", "map");
    reject("values", "map");
    reject("additional_fields", "map");
  }
  table.RejectUnknownKeys();
  return node;
}

void SchemaNode::Validate(const Value& value, const std::string& path) const {
  if (value.IsNil() && (nullable_ || kind_ == Kind::kNil || kind_ == Kind::kAny)) return;
  switch (kind_) {
    case Kind::kAny:
      return;
    case Kind::kNil:
      Fail(path, "expected nil, got " + std::string(Got(value)));
    case Kind::kBool:
      if (value.type() != Value::Type::kBool) Fail(path, "expected a boolean, got " + std::string(Got(value)));
      return;
    case Kind::kInteger: {
      if (!value.IsInteger()) Fail(path, "expected an integer, got " + std::string(Got(value)));
      if (!int_min_ && !int_max_) return;
      // Compare without overflow: a uint64 above INT64_MAX exceeds every int64 bound.
      const bool negative = value.type() == Value::Type::kInt;
      const bool huge = !negative && value.AsUint() > static_cast<std::uint64_t>(INT64_MAX);
      const auto describe = [&] {
        return negative ? std::to_string(value.AsInt()) : std::to_string(value.AsUint());
      };
      if ((int_max_ && (huge || value.AsInt() > *int_max_)) ||
          (int_min_ && !huge && value.AsInt() < *int_min_)) {
        Fail(path, "expected an integer " + Range(int_min_, int_max_) + ", got " + describe());
      }
      return;
    }
    case Kind::kFloat:
    case Kind::kNumber: {
      // Both accept integers: encoders commonly write 2.0 as 2.
      if (!value.IsNumber()) Fail(path, "expected " + std::string(Noun(kind_)) + ", got " + std::string(Got(value)));
      const double number = value.AsDouble();
      if (std::isnan(number)) Fail(path, "expected a number, got NaN");
      if ((float_min_ && number < *float_min_) || (float_max_ && number > *float_max_)) {
        Fail(path, "expected " + std::string(Noun(kind_)) + " " + Range(float_min_, float_max_) +
                       ", got " + FormatDouble(number));
      }
      return;
    }
    case Kind::kString: {
      if (!value.IsString()) Fail(path, "expected a string, got " + std::string(Got(value)));
      const std::string& text = value.AsString();
      if ((min_length_ && text.size() < *min_length_) || (max_length_ && text.size() > *max_length_)) {
        Fail(path, "expected a string of " + Limit(min_length_, max_length_, "bytes") + ", got " +
                       std::to_string(text.size()) + " bytes");
      }
      if (!enum_.empty()) {
        for (const std::string& allowed : enum_) {
          if (allowed == text) return;
        }
        std::string list;
        for (const std::string& allowed : enum_) list += (list.empty() ? "\"" : ", \"") + allowed + "\"";
        Fail(path, "expected one of " + list + ", got " + Preview(text));
      }
      return;
    }
    case Kind::kBinary: {
      if (value.type() != Value::Type::kBinary) Fail(path, "expected binary data, got " + std::string(Got(value)));
      const std::size_t size = value.AsBinary().bytes.size();
      if ((min_length_ && size < *min_length_) || (max_length_ && size > *max_length_)) {
        Fail(path, "expected binary data of " + Limit(min_length_, max_length_, "bytes") + ", got " +
                       std::to_string(size) + " bytes");
      }
      return;
    }
    case Kind::kArray: {
      if (!value.IsArray()) Fail(path, "expected an array, got " + std::string(Got(value)));
      const Value::Array& array = value.AsArray();
      if ((min_length_ && array.size() < *min_length_) || (max_length_ && array.size() > *max_length_)) {
        Fail(path, "expected an array of " + Limit(min_length_, max_length_, "items") + ", got " +
                       std::to_string(array.size()));
      }
      if (items_) {
        for (std::size_t i = 0; i < array.size(); ++i) {
          items_->Validate(array[i], path + "[" + std::to_string(i) + "]");
        }
      }
      return;
    }
    case Kind::kMap:
      ValidateMap(value, path);
      return;
  }
}

void SchemaNode::ValidateMap(const Value& value, const std::string& path) const {
  if (!value.IsMap()) Fail(path, "expected a map, got " + std::string(Got(value)));
  const Value::Map& map = value.AsMap();
  if ((min_length_ && map.size() < *min_length_) || (max_length_ && map.size() > *max_length_)) {
    Fail(path, "expected a map of " + Limit(min_length_, max_length_, "entries") + ", got " +
                   std::to_string(map.size()));
  }
  for (const auto& [name, field] : fields_) {
    const Value* found = value.Find(name);
    if (found == nullptr) {
      if (field.required_) Fail(path + "." + name, "required field is missing");
      continue;
    }
    field.Validate(*found, path + "." + name);
  }
  if (fields_.empty() && !values_) return;
  for (const auto& [key, element] : map) {
    if (!key.IsString()) {
      if (!fields_.empty() || !additional_fields_) Fail(path, "map keys must be strings, got " + std::string(Got(key)));
      continue;
    }
    bool known = false;
    for (const auto& [name, field] : fields_) {
      if (name == key.AsString()) {
        known = true;
        break;
      }
    }
    if (known) continue;
    if (values_) {
      values_->Validate(element, path + "." + key.AsString());
    } else if (!additional_fields_) {
      Fail(path + "." + key.AsString(), "unknown field (the schema allows no additional fields)");
    }
  }
}

PayloadSchema PayloadSchema::Load(const ConfigSection& root) {
  PayloadSchema schema;
  schema.source_ = root.source();
  (void)root.GetInt("schema_version", 1, 1, 1);
  schema.service_ = root.GetString("service", "");
  (void)root.GetOptionalString("description");
  if (!root.Has("request")) {
    throw Error(ErrorCode::kConfig, root.Describe("request", "a payload schema needs a [request] table"));
  }
  schema.request_ = SchemaNode::Read(root.Section("request"), false);
  if (root.Has("reply")) schema.reply_ = SchemaNode::Read(root.Section("reply"), false);
  root.RejectUnknownKeys();
  return schema;
}

PayloadSchema PayloadSchema::LoadFile(const std::filesystem::path& path) {
  return Load(ConfigSection::LoadFile(path));
}

PayloadSchema PayloadSchema::Parse(std::string_view text, std::string source_name) {
  return Load(ConfigSection::Parse(text, std::move(source_name)));
}

bool PayloadSchema::ValidateReply(const Value& reply) const {
  if (!reply_) return false;
  reply_->Validate(reply, "reply");
  return true;
}

}  // namespace courier::detail
