// MessagePack encoding of courier::Value, and the hardened unpack every payload decode
// (DecodeValue, Decode<T>) goes through.
#include <cstdint>
#include <exception>
#include <limits>
#include <new>
#include <string>

#include <msgpack.hpp>

#include "courier/codec.hpp"
#include "courier/error.hpp"
#include "courier/value.hpp"

namespace courier {
namespace {

[[noreturn]] void Reject(const std::string& why) {
  throw Error(ErrorCode::kBadRequest, "invalid MessagePack payload: " + why);
}

void CheckSize(std::size_t size, std::size_t limit, std::string_view what,
               std::string_view unit) {
  if (size > limit) {
    Reject(std::string(what) + " of " + std::to_string(size) + " " + std::string(unit) +
           " exceeds the limit of " + std::to_string(limit));
  }
}

// Walks the whole document without allocating, enforcing every limit and rejecting
// truncation. msgpack-c's own visitor allocates an array's or map's elements as soon as
// it reads the header, before it knows whether the input holds them: a few hundred
// bytes of nested headers each claiming just under max_array elements would reserve
// gigabytes. Once this pass has succeeded every claimed element is backed by at least
// one input byte, so unpack's allocations are bounded by the input's size.
class LimitChecker : public msgpack::null_visitor {
 public:
  explicit LimitChecker(const DecodeLimits& limits) : limits_(limits) {}

  bool visit_str(const char* /*data*/, std::uint32_t size) {
    CheckSize(size, limits_.max_str, "string", "bytes");
    return true;
  }
  bool visit_bin(const char* /*data*/, std::uint32_t size) {
    CheckSize(size, limits_.max_bin, "binary", "bytes");
    return true;
  }
  bool visit_ext(const char* /*data*/, std::uint32_t size) {
    if (limits_.max_ext == 0) Reject("extension types are not supported");
    CheckSize(size, limits_.max_ext, "extension", "bytes");
    return true;
  }
  bool start_array(std::uint32_t count) {
    CheckSize(count, limits_.max_array, "array", "elements");
    Enter();
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool start_map(std::uint32_t count) {
    CheckSize(count, limits_.max_map, "map", "entries");
    Enter();
    return true;
  }
  bool end_map() {
    --depth_;
    return true;
  }
  void parse_error(std::size_t /*parsed_offset*/, std::size_t error_offset) {
    Reject("invalid type byte at offset " + std::to_string(error_offset));
  }
  void insufficient_bytes(std::size_t /*parsed_offset*/, std::size_t error_offset) {
    Reject("truncated (input ends at offset " + std::to_string(error_offset) +
           " inside a value)");
  }

 private:
  void Enter() {
    if (++depth_ > limits_.max_depth) {
      Reject("nesting deeper than the limit of " + std::to_string(limits_.max_depth));
    }
  }

  const DecodeLimits& limits_;
  std::size_t depth_ = 0;
};

void CheckEncodable(std::size_t size, std::string_view what) {
  if (size > std::numeric_limits<std::uint32_t>::max()) {
    throw Error(ErrorCode::kTooLarge, "cannot encode a " + std::string(what) + " of " +
                                          std::to_string(size) +
                                          " (MessagePack allows 2^32-1)");
  }
}

void Pack(msgpack::packer<detail::StringWriter>& packer, const Value& value) {
  switch (value.type()) {
    case Value::Type::kNil:
      packer.pack_nil();
      return;
    case Value::Type::kBool:
      if (value.AsBool()) {
        packer.pack_true();
      } else {
        packer.pack_false();
      }
      return;
    case Value::Type::kInt:
      packer.pack_int64(value.AsInt());
      return;
    case Value::Type::kUint:
      packer.pack_uint64(value.AsUint());
      return;
    case Value::Type::kDouble:
      packer.pack_double(value.AsDouble());
      return;
    case Value::Type::kString: {
      const std::string& text = value.AsString();
      CheckEncodable(text.size(), "string");
      packer.pack_str(static_cast<std::uint32_t>(text.size()));
      packer.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
      return;
    }
    case Value::Type::kBinary: {
      const std::string& bytes = value.AsBinary().bytes;
      CheckEncodable(bytes.size(), "binary");
      packer.pack_bin(static_cast<std::uint32_t>(bytes.size()));
      packer.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
      return;
    }
    case Value::Type::kArray: {
      const Value::Array& array = value.AsArray();
      CheckEncodable(array.size(), "array");
      packer.pack_array(static_cast<std::uint32_t>(array.size()));
      for (const Value& element : array) Pack(packer, element);
      return;
    }
    case Value::Type::kMap: {
      const Value::Map& map = value.AsMap();
      CheckEncodable(map.size(), "map");
      packer.pack_map(static_cast<std::uint32_t>(map.size()));
      for (const auto& [key, element] : map) {
        Pack(packer, key);
        Pack(packer, element);
      }
      return;
    }
  }
}

// Every decode: the limit-checking pass over the whole document, then `second` (the
// real decode), with every failure turned into Error(kBadRequest).
template <class Second>
auto CheckedDecode(std::string_view bytes, const DecodeLimits& limits, Second second) -> decltype(second()) {
  // First, before any parsing: the cheapest check and the one that bounds the rest.
  if (bytes.size() > limits.max_bytes) {
    Reject("document of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
           std::to_string(limits.max_bytes));
  }
  if (bytes.empty()) Reject("empty input");

  try {
    std::size_t offset = 0;
    LimitChecker checker(limits);
    msgpack::parse(bytes.data(), bytes.size(), offset, checker);
    if (offset != bytes.size()) {
      Reject(std::to_string(bytes.size() - offset) + " trailing bytes after the value");
    }
    return second();
  } catch (const Error&) {
    throw;
  } catch (const msgpack::ext_size_overflow&) {
    Reject("extension types are not supported");
  } catch (const msgpack::depth_size_overflow&) {
    Reject("nesting deeper than the limit of " + std::to_string(limits.max_depth));
  } catch (const msgpack::size_overflow& e) {
    Reject(std::string("a string, binary, array or map exceeds its limit (") + e.what() + ")");
  } catch (const msgpack::insufficient_bytes&) {
    Reject("truncated");
  } catch (const msgpack::unpack_error& e) {
    Reject(e.what());
  } catch (const std::bad_alloc&) {
    Reject("out of memory while decoding");
  } catch (const std::exception& e) {
    Reject(e.what());
  }
}

// Builds a Value straight from a vetted document (second pass of DecodeValue): no
// msgpack::object tree and no zone, so each string or binary is copied once, into the Value.
// Containers are reserved at their exact size, so pointers into them stay valid while
// their elements are filled in.
class ValueBuilder : public msgpack::null_visitor {
 public:
  Value& result() { return root_; }

  bool visit_nil() { return Put(Value()); }
  bool visit_boolean(bool v) { return Put(Value(v)); }
  bool visit_positive_integer(std::uint64_t v) { return Put(Value(static_cast<unsigned long long>(v))); }
  bool visit_negative_integer(std::int64_t v) { return Put(Value(static_cast<long long>(v))); }
  bool visit_float32(float v) { return Put(Value(static_cast<double>(v))); }
  bool visit_float64(double v) { return Put(Value(v)); }
  bool visit_str(const char* data, std::uint32_t size) { return Put(Value(std::string(data, size))); }
  bool visit_bin(const char* data, std::uint32_t size) { return Put(Value(Binary{std::string(data, size)})); }
  bool visit_ext(const char* /*data*/, std::uint32_t /*size*/) { Reject("extension types are not supported"); }
  bool start_array(std::uint32_t count) {
    Value::Array array;
    array.reserve(count);
    Value* slot = Slot();
    *slot = Value(std::move(array));
    stack_.push_back({slot, false});
    return true;
  }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool start_map(std::uint32_t count) {
    Value::Map map;
    map.reserve(count);
    Value* slot = Slot();
    *slot = Value(std::move(map));
    stack_.push_back({slot, false});
    return true;
  }
  bool start_map_key() {
    stack_.back().container->AsMap().emplace_back();
    stack_.back().at_value = false;
    return true;
  }
  bool start_map_value() {
    stack_.back().at_value = true;
    return true;
  }
  bool end_map() {
    stack_.pop_back();
    return true;
  }

 private:
  struct Open {
    Value* container;
    bool at_value;  // maps: the current entry's value is next (else its key)
  };

  // Returns: where the next value goes.
  Value* Slot() {
    if (stack_.empty()) return &root_;
    Open& top = stack_.back();
    if (top.container->IsArray()) {
      Value::Array& array = top.container->AsArray();
      array.emplace_back();
      return &array.back();
    }
    auto& entry = top.container->AsMap().back();
    return top.at_value ? &entry.second : &entry.first;
  }
  bool Put(Value value) {
    *Slot() = std::move(value);
    return true;
  }

  Value root_;
  std::vector<Open> stack_;
};

}  // namespace

namespace detail {

msgpack::object_handle Unpack(std::string_view bytes, const DecodeLimits& limits) {
  return CheckedDecode(bytes, limits, [&] {
    // The checker has vetted the document; msgpack-c's own limits stay as a second line.
    std::size_t offset = 0;
    msgpack::object_handle handle = msgpack::unpack(
        bytes.data(), bytes.size(), offset, nullptr, nullptr,
        msgpack::unpack_limit(limits.max_array, limits.max_map, limits.max_str,
                              limits.max_bin, limits.max_ext, limits.max_depth));
    if (offset != bytes.size()) {
      Reject(std::to_string(bytes.size() - offset) + " trailing bytes after the value");
    }
    return handle;
  });
}

}  // namespace detail

std::string EncodeValue(const Value& value) {
  std::string out;
  detail::StringWriter writer(out);
  msgpack::packer<detail::StringWriter> packer(writer);
  Pack(packer, value);
  return out;
}

Value DecodeValue(std::string_view bytes, const DecodeLimits& limits) {
  return CheckedDecode(bytes, limits, [&] {
    ValueBuilder builder;
    std::size_t offset = 0;
    msgpack::parse(bytes.data(), bytes.size(), offset, builder);
    return std::move(builder.result());
  });
}

}  // namespace courier
