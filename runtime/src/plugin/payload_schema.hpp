// payload_schema.hpp — payload schemas (schemas/SCHEMA.md): load a TOML schema and verify
// a decoded request against it before any handler sees it.
//
//   PayloadSchema schema = PayloadSchema::LoadFile("schemas/services/textstats.toml");
//   schema.Validate(request);   // throws Error(kInvalidPayload, "request.top: ...")
//
// Thread-safety: immutable after loading; Validate is const and safe from many threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "courier/config.hpp"
#include "courier/value.hpp"

namespace courier::detail {

class SchemaNode {
 public:
  enum class Kind { kAny, kNil, kBool, kInteger, kFloat, kNumber, kString, kBinary, kArray, kMap };

  // Reads a node from its table. Throws: Error(kConfig) naming the key.
  static SchemaNode Read(const ConfigSection& table, bool in_fields);

  // Throws: Error(kInvalidPayload) "PATH: what is wrong".
  void Validate(const Value& value, const std::string& path) const;

  Kind kind() const { return kind_; }
  bool required() const { return required_; }

 private:
  [[noreturn]] static void Fail(const std::string& path, const std::string& what);
  void ValidateMap(const Value& value, const std::string& path) const;

  Kind kind_ = Kind::kAny;
  bool required_ = false;
  bool nullable_ = false;
  std::optional<std::int64_t> int_min_, int_max_;
  std::optional<double> float_min_, float_max_;
  std::optional<std::uint64_t> min_length_, max_length_;  // bytes, items or entries
  std::vector<std::string> enum_;
  std::shared_ptr<SchemaNode> items_;                     // arrays
  std::vector<std::pair<std::string, SchemaNode>> fields_;  // maps, in file order
  std::shared_ptr<SchemaNode> values_;                    // maps without fixed fields
  bool additional_fields_ = true;
};

class PayloadSchema {
 public:
  // Throws: Error(kConfig) naming the file, line and key of the first problem.
  static PayloadSchema Load(const ConfigSection& root);
  static PayloadSchema LoadFile(const std::filesystem::path& path);
  static PayloadSchema Parse(std::string_view text, std::string source_name);

  // Checks a request. Throws: Error(kInvalidPayload) with the path of the first violation.
  void Validate(const Value& request) const { request_.Validate(request, "request"); }
  // Checks a reply against the optional [reply] node (for services' own tests).
  // Returns: whether the schema describes the reply at all.
  bool ValidateReply(const Value& reply) const;

  // Returns: whether the schema has a [reply] node.
  bool has_reply() const { return reply_.has_value(); }
  const std::string& source() const { return source_; }
  const std::string& service() const { return service_; }

 private:
  std::string source_;
  std::string service_;
  SchemaNode request_;
  std::optional<SchemaNode> reply_;
};

}  // namespace courier::detail
